import type { Command } from 'commander';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { homedir, platform } from 'node:os';
import { join } from 'node:path';
import { caPaths, ensureCertificateAuthority } from '../protocols/tls/ca.js';
import { cliConfig, CliError, type GlobalOptions } from './context.js';

/**
 * `fleethub trust`: installs the data directory's CA where browsers and tools look for it, as
 * `mkcert -install` does: the system store (Debian's /usr/local/share/ca-certificates +
 * update-ca-certificates) and the NSS databases of Chromium (~/.pki/nssdb) and Firefox profiles.
 * Every location can be overridden (flags or environment) so that it can run against throwaway
 * stores. It reports each change, and each location it could not change with what to do instead.
 */

/** What happened at one location. */
type Outcome = 'installed' | 'already' | 'removed' | 'absent' | 'failed' | 'manual';

interface Step {
  outcome: Outcome;
  text: string;
}

const DEBIAN_CA_DIR = '/usr/local/share/ca-certificates';

export function trustCommand(program: Command): void {
  program
    .command('trust')
    .description("install Fleethub's CA into the system store and the browsers' NSS databases (--uninstall removes it)")
    .option('--uninstall', 'remove the CA from every location instead')
    .option('--nss-db <dir>', 'an NSS database directory to use instead of ~/.pki/nssdb and the Firefox profiles (repeatable; $FLEETHUB_TRUST_NSS_DBS, colon-separated)', (v: string, prev: string[] = []) => [...prev, v])
    .option('--no-nss', 'leave the NSS databases alone')
    .option('--system-ca-dir <dir>', `directory of the system's extra CA certificates (default ${DEBIAN_CA_DIR}; $FLEETHUB_TRUST_SYSTEM_CA_DIR)`)
    .option('--no-system', 'leave the system store alone')
    .option('--update-command <cmd>', 'command that rebuilds the system store after a change (default update-ca-certificates; $FLEETHUB_TRUST_UPDATE_COMMAND)')
    .action(async (opts: { uninstall?: boolean; nssDb?: string[]; nss: boolean; systemCaDir?: string; system: boolean; updateCommand?: string }) => {
      const config = cliConfig(program.opts<GlobalOptions>());
      const certPath = caPaths(config.dataDir).cert;
      if (!existsSync(certPath)) {
        if (opts.uninstall) throw new CliError(`No CA certificate at ${certPath}: nothing to uninstall`);
        await ensureCertificateAuthority(config.dataDir);
      }
      const pem = readFileSync(certPath, 'utf8');
      const fingerprint = new X509Certificate(pem).fingerprint256.replace(/:/g, '').toLowerCase().slice(0, 16);
      const env = process.env;
      const nssDbs = opts.nssDb ?? (env.FLEETHUB_TRUST_NSS_DBS ? env.FLEETHUB_TRUST_NSS_DBS.split(':').filter(Boolean) : undefined);
      const systemCaDir = opts.systemCaDir ?? env.FLEETHUB_TRUST_SYSTEM_CA_DIR;
      const updateCommand = opts.updateCommand ?? env.FLEETHUB_TRUST_UPDATE_COMMAND;
      const certutil = env.FLEETHUB_TRUST_CERTUTIL ?? 'certutil';

      process.stdout.write(`${opts.uninstall ? 'Uninstalling' : 'Installing'} Fleethub's CA ${certPath} (SHA-256 ${fingerprint}…)\n`);
      const steps: Step[] = [];
      if (opts.system) steps.push(...systemStore(certPath, pem, fingerprint, !!opts.uninstall, systemCaDir, updateCommand));
      if (opts.nss) steps.push(...nssStores(certPath, fingerprint, !!opts.uninstall, nssDbs, certutil));
      for (const s of steps) process.stdout.write(`  ${label[s.outcome]} ${s.text}\n`);
      if (!opts.uninstall) {
        process.stdout.write(`Node.js does not read the system store: export NODE_EXTRA_CA_CERTS="${certPath}"\n`);
      }
      // As mkcert: a location that could not be changed is a warning, unless nothing could be.
      if (steps.length && steps.every((s) => s.outcome === 'failed' || s.outcome === 'manual')) process.exitCode = 1;
    });
}

const label: Record<Outcome, string> = {
  installed: 'installed:',
  already: 'already installed:',
  removed: 'removed:',
  absent: 'not present:',
  failed: 'could not:',
  manual: 'to do by hand:',
};

function systemStore(certPath: string, pem: string, fingerprint: string, uninstall: boolean, overrideDir: string | undefined, updateCommand: string | undefined): Step[] {
  const dir = overrideDir ?? DEBIAN_CA_DIR;
  const debianLike = overrideDir !== undefined || (platform() === 'linux' && (existsSync(dir) || hasCommand('update-ca-certificates')));
  if (!debianLike) return [{ outcome: 'manual', text: manualSystemInstructions(certPath, uninstall) }];
  const file = join(dir, `fleethub-${fingerprint}.crt`);
  const update = updateCommand ?? 'update-ca-certificates';
  const sudo = `sudo ${uninstall ? `rm ${file}` : `cp ${certPath} ${file}`} && sudo ${update}`;
  const steps: Step[] = [];
  try {
    if (uninstall) {
      if (!existsSync(file)) return [{ outcome: 'absent', text: `system store (${file})` }];
      rmSync(file);
      steps.push({ outcome: 'removed', text: `system store: deleted ${file}` });
    } else {
      if (existsSync(file) && readFileSync(file, 'utf8') === pem) return [{ outcome: 'already', text: `system store (${file})` }];
      if (!existsSync(dir) || !statSync(dir).isDirectory()) return [{ outcome: 'failed', text: `system store: no directory ${dir}` }];
      copyFileSync(certPath, file);
      steps.push({ outcome: 'installed', text: `system store: copied to ${file}` });
    }
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return [{ outcome: 'failed', text: `system store: ${code === 'EACCES' || code === 'EPERM' ? `permission denied on ${dir}; run: ${sudo}` : (e as Error).message}` }];
  }
  const ran = spawnSync(update, { shell: true, encoding: 'utf8' });
  if (ran.status === 0) steps.push({ outcome: uninstall ? 'removed' : 'installed', text: `system store: ran ${update}` });
  else steps.push({ outcome: 'failed', text: `system store: ${update} failed (${(ran.stderr || ran.error?.message || `exit ${ran.status}`).trim()}); run: sudo ${update}` });
  return steps;
}

function manualSystemInstructions(certPath: string, uninstall: boolean): string {
  switch (platform()) {
    case 'darwin':
      return uninstall
        ? `macOS keychain: sudo security delete-certificate -c "Fleethub Local CA" /Library/Keychains/System.keychain`
        : `macOS keychain: sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain "${certPath}"`;
    case 'win32':
      return uninstall ? `Windows store: certutil -delstore ROOT "Fleethub Local CA"` : `Windows store: certutil -addstore -f ROOT "${certPath}"`;
    default:
      if (existsSync('/etc/pki/ca-trust/source/anchors')) {
        return uninstall
          ? `system store: sudo rm /etc/pki/ca-trust/source/anchors/fleethub-*.crt && sudo update-ca-trust`
          : `system store: sudo cp "${certPath}" /etc/pki/ca-trust/source/anchors/fleethub.crt && sudo update-ca-trust (or pass --system-ca-dir and --update-command)`;
      }
      return `system store: unknown on this system; add "${certPath}" to it as its documentation says (or pass --system-ca-dir and --update-command)`;
  }
}

/** ~/.pki/nssdb (Chromium, Chrome) and every Firefox profile's database, those that exist. */
function defaultNssDbs(): string[] {
  const home = homedir();
  const dbs = [join(home, '.pki', 'nssdb')];
  for (const root of [join(home, '.mozilla', 'firefox'), join(home, 'snap', 'firefox', 'common', '.mozilla', 'firefox')]) {
    if (!existsSync(root)) continue;
    for (const profile of readdirSync(root)) dbs.push(join(root, profile));
  }
  return dbs.filter((d) => existsSync(join(d, 'cert9.db')));
}

function nssStores(certPath: string, fingerprint: string, uninstall: boolean, explicit: string[] | undefined, certutil: string): Step[] {
  const dbs = explicit ?? defaultNssDbs();
  if (dbs.length === 0) {
    return [{ outcome: uninstall ? 'absent' : 'manual', text: `NSS: no database in ~/.pki/nssdb or ~/.mozilla/firefox/*/ (Chromium creates ~/.pki/nssdb on its first start; then run fleethub trust again)` }];
  }
  const probe = spawnSync(certutil, ['-H'], { encoding: 'utf8' });
  if (probe.error) {
    return [{ outcome: 'failed', text: `NSS (${dbs.join(', ')}): ${certutil} not found; install it (Debian/Ubuntu: sudo apt-get install libnss3-tools; Fedora: sudo dnf install nss-tools; macOS: brew install nss) and run fleethub trust${uninstall ? ' --uninstall' : ''} again` }];
  }
  const nick = `Fleethub CA ${fingerprint}`;
  return dbs.map((dir): Step => {
    const db = `sql:${dir}`;
    if (!existsSync(join(dir, 'cert9.db'))) return { outcome: 'failed', text: `NSS ${dir}: no cert9.db there (create one with: certutil -N -d ${db} --empty-password)` };
    const present = spawnSync(certutil, ['-L', '-d', db, '-n', nick], { encoding: 'utf8' }).status === 0;
    const args = uninstall ? ['-D', '-d', db, '-n', nick] : ['-A', '-d', db, '-t', 'C,,', '-n', nick, '-i', certPath];
    if (uninstall ? !present : present) return { outcome: uninstall ? 'absent' : 'already', text: `NSS ${dir} ("${nick}")` };
    const ran = spawnSync(certutil, args, { encoding: 'utf8' });
    if (ran.status !== 0) return { outcome: 'failed', text: `NSS ${dir}: certutil ${args.join(' ')} failed: ${(ran.stderr || ran.stdout).trim()}` };
    return { outcome: uninstall ? 'removed' : 'installed', text: `NSS ${dir} ("${nick}"${uninstall ? '' : ', trusted for TLS servers'})` };
  });
}

function hasCommand(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).status === 0;
}
