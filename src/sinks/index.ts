import { elasticsearchSink } from './elasticsearch/registration.js';
import { fileSink } from './file/registration.js';
import { httpSink } from './http/registration.js';
import { splunkHecSink } from './splunk-hec/registration.js';
import { postgresSink } from './postgres/registration.js';
import { s3Sink } from './s3/registration.js';
import { stdoutSink } from './stdout/registration.js';
import { syslogSink } from './syslog/registration.js';

/*
 * Every sink type, one line each. The config's `sinks` union, `config schema`/`config example` and the
 * pipeline's factory are built from this list: adding a sink is its folder plus one line here.
 * The config loader imports this list, so a registration loads its driver inside `create`: `validate`
 * and the state commands must not pay for pg, the AWS SDK or the HTTP stack.
 */
export const SINKS = [
  fileSink,
  stdoutSink,
  httpSink,
  splunkHecSink,
  elasticsearchSink,
  postgresSink,
  syslogSink,
  s3Sink,
] as const;
