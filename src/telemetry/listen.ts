import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Listens on host:port and resolves with the authority it got (`127.0.0.1:8686`, `[::1]:8686`; port 0 picks
 * a free one). Idle keep-alive connections are closed after 5 s: browsers and scrapers keep them open, and
 * they must not hold up shutdown.
 */
export async function listen(server: Server, host: string, port: number): Promise<string> {
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `${shown}:${address.port}`;
}
