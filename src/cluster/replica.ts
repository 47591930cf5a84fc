import type pg from 'pg';
import type { Config, PostgresStateConfig } from '../config/schema.js';
import { OktailError } from '../core/errors.js';
import type { BuiltPipeline, BuiltSource } from '../pipeline/build.js';
import type { Logger } from '../telemetry/logger.js';
import type { TelemetrySink } from '../telemetry/telemetry.js';
import { Coordinator, type ClusterTelemetry } from './coordinator.js';
import { defaultNodeId, migrateState, statePool } from './db.js';
import { LeaseStore } from './leases.js';
import { PostgresCheckpointStore } from './store.js';

export interface Replica {
  built: BuiltPipeline;
  coordinator: Coordinator;
  /** Leaves the cluster (leases released at once) and closes everything; after the pipeline stopped. */
  close(): Promise<void>;
}

/** The `state` block when it names the postgres backend. */
export function clusterState(config: Config): PostgresStateConfig | null {
  return config.state?.backend === 'postgres' ? config.state : null;
}

function isClusterTelemetry(t: unknown): t is ClusterTelemetry {
  return typeof (t as Partial<ClusterTelemetry>).clusterSourcesOwned === 'function';
}

/**
 * Builds a replica: the schema is brought up to date, the pipeline starts with no source, and the
 * coordinator adds the sources whose leases this replica takes (and removes those it hands over or loses).
 */
export async function startReplica(
  config: Config,
  options: { log: Logger; telemetry: TelemetrySink; configPath?: string; stdout?: NodeJS.WritableStream },
): Promise<Replica> {
  const state = clusterState(config);
  if (!state) throw new OktailError('INTERNAL', 'startReplica needs state.backend: postgres');
  const nodeId = state.node_id ?? defaultNodeId();
  const sourceNames = Object.keys(config.sources);
  // Every source's lease and commit share this pool; one connection per few sources is plenty, since
  // each holds it only for one short statement or transaction.
  const pool: pg.Pool = statePool(state.url, Math.min(20, 4 + Math.ceil(sourceNames.length / 4)));
  try {
    await migrateState(pool, state.url);
  } catch (err) {
    await pool.end();
    throw err;
  }
  const leases = new LeaseStore(pool, { url: state.url, nodeId, leaseSecs: state.lease_secs });
  let coordinator: Coordinator | null = null;
  const store = new PostgresCheckpointStore(pool, { url: state.url, grant: (s) => coordinator?.grant(s) });
  const { buildPipeline } = await import('../pipeline/build.js');
  let built: BuiltPipeline;
  try {
    built = await buildPipeline(config, {
      log: options.log,
      telemetry: options.telemetry,
      configPath: options.configPath,
      stdout: options.stdout,
      cluster: {
        store,
        context: { nodeId, ensureLease: (source) => coordinator!.ensureLease(source) },
      },
    });
  } catch (err) {
    await pool.end();
    throw err;
  }
  const running = new Map<string, BuiltSource>();
  coordinator = new Coordinator({
    leases,
    sources: sourceNames,
    log: options.log.child({ node: nodeId }),
    ...(isClusterTelemetry(options.telemetry) ? { telemetry: options.telemetry } : {}),
    host: {
      async start(name) {
        const made = await built.createSource(name, config.sources[name]!);
        running.set(name, made);
        try {
          await built.pipeline.addSource(made.source);
        } catch (err) {
          running.delete(name);
          await made.close();
          throw err;
        }
      },
      async stop(name) {
        await built.pipeline.removeSource(name);
        const made = running.get(name);
        running.delete(name);
        await made?.close();
      },
    },
  });
  const c = coordinator;
  return {
    built,
    coordinator: c,
    async close() {
      await c.stop();
      await built.close();
      await pool.end();
    },
  };
}
