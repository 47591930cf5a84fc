import { fileSink } from './file/registration.js';
import { httpSink } from './http/registration.js';
import { stdoutSink } from './stdout/registration.js';

/*
 * Every sink type, one line each. The config's `sinks` union, `config schema`/`config example` and the
 * pipeline's factory are built from this list: adding a sink is its folder plus one line here.
 */
export const SINKS = [fileSink, stdoutSink, httpSink] as const;
