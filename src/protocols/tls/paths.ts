/** Where a data directory keeps its CA and server certificate (no X.509 library: the CLI imports this on every call). */
import { join } from 'node:path';

export const caPaths = (dataDir: string) => ({
  cert: join(dataDir, 'ca', 'ca-cert.pem'),
  key: join(dataDir, 'ca', 'ca-key.pem'),
});

export const serverPaths = (dataDir: string) => ({
  cert: join(dataDir, 'tls', 'server-cert.pem'),
  key: join(dataDir, 'tls', 'server-key.pem'),
});
