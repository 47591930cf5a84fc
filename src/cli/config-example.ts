/**
 * `oktail config example`. Every key of the schema appears here, either set or commented out as
 * `# key: value`; a test uncomments those lines and checks the result against the schema, so this text
 * cannot drift from src/config/schema.ts unnoticed.
 */
import { SINKS } from '../sinks/index.js';

export const CONFIG_EXAMPLE = `# oktail configuration. Check it with: oktail validate -c oktail.yaml
# Editors with a YAML language server can validate as you type:
#   oktail config schema > oktail.schema.json
# and put "# yaml-language-server: $schema=./oktail.schema.json" on the first line.
# Relative paths are resolved against the directory of this file.

# Checkpoints (one atomic state.json) and the lock that keeps a second collector out.
data_dir: ./.oktail

# The collector's own log, on stderr. Overridden by --log-level and --log-format.
log:
  level: info          # trace, debug, info, warn, error, fatal or silent
  # format: json       # json or pretty; unset: pretty on a terminal, json otherwise

# HTTP endpoint for /metrics (Prometheus), /health and /ready. Unset: no endpoint.
# api:
#   address: 127.0.0.1:9598

# The web console (docs/console.md): add, test and watch sources in a browser. Unset: no console.
# With it, sources may start empty ({}) and a sink's inputs may be [].
# console:
#   address: 127.0.0.1:8686
#   tls:                 # required for any address but loopback
#     crt_file: ./console.pem
#     key_file: ./console.key

# Outbound proxy to Okta for every source (a source's own proxy block replaces it). Unset: the
# HTTPS_PROXY / HTTP_PROXY / NO_PROXY environment variables apply; url: "" means no proxy at all.
# proxy:
#   url: http://oktail:\${PROXY_PASS}@proxy.corp.example:3128
#   no_proxy: [.internal.example, 10.0.0.0/8]
#   tls:
#     ca_file: ./proxy-ca.pem

sources:
  # The name is the state key and the "source" label of metrics: keep it stable.
  okta:
    type: okta
    # The org's API host: no https://, no path, not the -admin. host.
    domain: company.okta.com
    # Seconds between the starts of two collection cycles.
    interval_secs: 120
    # First start only (ignored once a checkpoint exists). Unset: now. Okta keeps 90 days.
    # start_from: 2025-01-15T08:30:00Z
    # A Lua collection script to use instead of the built-in one (oktail script print okta).
    # script: ./my-okta.lua
    auth:
      strategy: bearer
      # A secret: let the environment supply it (e.g. systemd EnvironmentFile, a container secret).
      token: \${OKTA_API_TOKEN}
      header: Authorization
      prefix: "SSWS "
    # Standard HTTPS with the system trust store unless enabled.
    tls:
      enabled: false
      # ca_file: ./corp-ca.pem
      # crt_file: ./client.pem
      # key_file: ./client.key
      # key_pass: \${OKTA_CLIENT_KEY_PASS}
      # verify_certificate: true
      # verify_hostname: true
    # Okta's rate limit is shared with every other integration of the org.
    rate_limit:
      max_share: 0.5      # at most half of X-Rate-Limit-Limit per window
      min_remaining: 2    # always leave this many requests for others
    retry:
      initial_backoff_ms: 1000
      max_backoff_secs: 300
    request_timeout_secs: 60
  # The same org read by an OAuth 2.0 service app instead of an API token (docs/authentication.md).
  # okta_oauth:
  #   type: okta
  #   domain: company.okta.com
  #   auth:
  #     strategy: oauth2
  #     client_id: 0oa1b2c3d4e5f6g7h8i9
  #     # PEM (RSA or EC, optionally encrypted) or JWK; its public key is uploaded to the app.
  #     private_key_file: ./okta-app.pem
  #     private_key_pass: \${OKTA_KEY_PASS}
  #     key_id: my-kid
  #     scopes: [okta.logs.read]
  #     dpop: auto          # auto: when the org asks for it; true; false
  #   # This source's own proxy, replacing the global one; url: "" goes direct.
  #   proxy:
  #     url: ""
  #     no_proxy: []
  #     tls:
  #       ca_file: ./proxy-ca.pem
  # Secrets read from files (mode 0600) instead of the environment, as the web console writes them.
  # okta_files:
  #   type: okta
  #   domain: company.okta.com
  #   enabled: false      # kept in the config (and its checkpoint kept) but not collected
  #   auth:
  #     token_file: ./secrets/okta.token
  #   tls:
  #     enabled: true
  #     crt_file: ./client.pem
  #     key_file: ./client.key
  #     key_pass_file: ./secrets/client.key_pass
  # okta_oauth_files:
  #   type: okta
  #   domain: company.okta.com
  #   enabled: false
  #   auth:
  #     strategy: oauth2
  #     client_id: 0oa1b2c3d4e5f6g7h8i9
  #     private_key_file: ./okta-app.pem
  #     private_key_pass_file: ./secrets/okta_oauth_files.private_key_pass

sinks:
${SINKS.map((r) => r.example ?? '').join('')}  # The OAuth source above, when used.
  # oauth_events:
  #   type: file
  #   inputs: [okta_oauth]
  #   path: ./okta-oauth-system-log.ndjson
  # files_events:
  #   type: file
  #   inputs: [okta_files, okta_oauth_files]
  #   path: ./okta-files-system-log.ndjson

# Several replicas sharing the orgs through PostgreSQL: oktail config example --cluster (docs/cluster.md).
`;

/**
 * `oktail config example --cluster`: replicas sharing their state in PostgreSQL. Apart from the main
 * example because its rule (no file or stdout sink) contradicts the main example's file sinks.
 */
export const CLUSTER_EXAMPLE = `# oktail on several replicas: run this same file on each (docs/cluster.md).
# Each org is collected by one replica at a time; a replica that dies loses its orgs to the others
# after lease_secs. Check it with: oktail validate -c oktail.yaml

state:
  backend: postgres     # file (default: data_dir/state.json) or postgres
  # A secret as a whole: the password comes from the environment.
  url: postgres://oktail:\${PG_PASSWORD}@db.example.com:5432/oktail
  lease_secs: 15        # a replica that stops renewing loses its sources after this
  node_id: \${HOSTNAME}  # unset: hostname and process id

api:
  address: 0.0.0.0:9598 # /ready is 200 on a healthy standby that owns nothing

sources:
  acme:
    type: okta
    domain: acme.okta.com
    auth:
      token: \${OKTA_API_TOKEN}
  globex:
    type: okta
    domain: globex.okta.com
    auth:
      token: \${OKTA_API_TOKEN}

sinks:
  # With the state in the same database, each page and its checkpoint are one transaction:
  # exactly once across any takeover. File and stdout sinks are refused with this backend.
  db:
    type: postgres
    inputs: [acme, globex]
    url: postgres://oktail:\${PG_PASSWORD}@db.example.com:5432/oktail
    table: okta_events
`;

/**
 * The example with every commented-out setting switched on (`# key: value` lines become `key: value`),
 * for the test that keeps the example complete. Prose comments never look like `# key:`.
 */
export function uncommentedExample(): string {
  return CONFIG_EXAMPLE.split('\n')
    .map((line) => line.replace(/^(\s*)# (\s*[a-z_]+:(?: .*)?)$/, '$1$2'))
    .join('\n');
}
