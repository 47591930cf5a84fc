import { Command } from '@commander-js/extra-typings';
import { OktailError } from '../core/errors.js';

/** "in 12 s" / "3 s ago" between two instants of the database's clock. */
function relative(at: string | null, now: string): string {
  if (at === null) return '-';
  const secs = Math.round((Date.parse(at) - Date.parse(now)) / 1000);
  return secs >= 0 ? `in ${secs} s` : `${-secs} s ago`;
}

export function clusterCommand() {
  const cluster = new Command('cluster').description(
    'replicas sharing their sources through PostgreSQL (state.backend: postgres)',
  );
  cluster
    .command('status')
    .description('list the live replicas, the sources each owns, lease expiries and fence tokens')
    .requiredOption('-c, --config <file>', 'config file (YAML)')
    .option('--json', 'print JSON instead of text')
    .action(async (opts) => {
      const { loadConfig } = await import('../config/load.js');
      const config = await loadConfig(opts.config, process.env, { secrets: 'state' });
      if (config.state?.backend !== 'postgres') {
        throw new OktailError(
          'CONFIG_INVALID',
          'cluster status needs state.backend: postgres in the config (with a file backend there is one collector)',
        );
      }
      const { StateAdmin } = await import('../cluster/admin.js');
      const admin = await StateAdmin.open(config.state, 'cluster status');
      try {
        const status = await admin.leases.status();
        const configured = Object.keys(config.sources);
        const known = new Set(status.sources.map((s) => s.source));
        const sources = [
          ...status.sources.map((s) => ({ ...s, configured: configured.includes(s.source) })),
          ...configured
            .filter((name) => !known.has(name))
            .map((name) => ({
              source: name,
              domain: null,
              committed_at: null,
              owner: null,
              fence: 0,
              lease_expires_at: null,
              live: false,
              configured: true,
            })),
        ];
        if (opts.json === true) {
          process.stdout.write(
            JSON.stringify({ now: status.now, replicas: status.nodes, sources }, null, 2) + '\n',
          );
          return;
        }
        const lines: string[] = [
          `State database: ${admin.where.replace('the state database at ', '')} (its clock: ${status.now})`,
        ];
        const live = status.nodes.filter((n) => n.live);
        lines.push(`Replicas: ${live.length} live`);
        for (const n of status.nodes) {
          const owns = sources.filter((s) => s.live && s.owner === n.node_id).map((s) => s.source);
          lines.push(
            `  ${n.node_id}: ${n.live ? 'live' : 'gone'}, heartbeat ${relative(n.heartbeat_at, status.now)}, ` +
              `started ${n.started_at}, owns ${owns.length}${owns.length > 0 ? `: ${owns.join(', ')}` : ''}`,
          );
        }
        lines.push(`Sources: ${sources.length}`);
        for (const s of sources) {
          const lease = s.live
            ? `owned by ${s.owner}, lease expires ${relative(s.lease_expires_at, status.now)}`
            : s.owner !== null
              ? `lease of ${s.owner} expired ${relative(s.lease_expires_at, status.now)} (to be taken over)`
              : 'free';
          const notes = [
            `fence ${s.fence}`,
            s.committed_at ? `committed ${s.committed_at}` : 'no checkpoint yet',
            ...(s.configured ? [] : ['not in this config']),
          ];
          lines.push(`  ${s.source}: ${lease}; ${notes.join(', ')}`);
        }
        process.stdout.write(lines.join('\n') + '\n');
      } finally {
        await admin.close();
      }
    });
  return cluster;
}
