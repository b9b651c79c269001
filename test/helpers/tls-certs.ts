/**
 * Test certificates made by `openssl` in a directory the caller owns: a CA,
 * a server certificate for localhost / 127.0.0.1 signed by it, a device
 * (client) certificate signed by it with the given CN, and a rogue device
 * certificate signed by a CA nobody trusts. EC P-256 keys (fast to make).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export interface KeyPair {
  cert: string;
  key: string;
  certPath: string;
  keyPath: string;
  /** cert + key in one file (HAProxy's `crt`). */
  pemPath: string;
}

export interface TestCertificates {
  ca: string;
  caPath: string;
  server: KeyPair;
  device: KeyPair;
  rogue: KeyPair;
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

function issue(dir: string, name: string, subject: string, ca: string, extensions: string): KeyPair {
  fs.writeFileSync(path.join(dir, `${name}.ext`), extensions);
  openssl(dir, ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject]);
  openssl(dir, [
    'x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-set_serial', String(Date.now()),
    '-days', '2', '-out', `${name}.crt`, '-extfile', `${name}.ext`,
  ]);
  const certPath = path.join(dir, `${name}.crt`);
  const keyPath = path.join(dir, `${name}.key`);
  const cert = fs.readFileSync(certPath, 'utf8');
  const key = fs.readFileSync(keyPath, 'utf8');
  const pemPath = path.join(dir, `${name}.pem`);
  fs.writeFileSync(pemPath, cert + key);
  return { cert, key, certPath, keyPath, pemPath };
}

function makeCa(dir: string, name: string, subject: string): void {
  openssl(dir, [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`,
    '-out', `${name}.crt`, '-days', '2', '-subj', subject,
  ]);
}

export function makeCertificates(dir: string, deviceCn = 'device-0042'): TestCertificates {
  makeCa(dir, 'ca', '/CN=edgepoll test CA');
  makeCa(dir, 'rogue-ca', '/CN=somebody else');
  const server = issue(dir, 'server', '/CN=localhost', 'ca', 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  const device = issue(dir, 'device', `/O=edgepoll devices/CN=${deviceCn}`, 'ca', 'extendedKeyUsage=clientAuth\n');
  const rogue = issue(dir, 'rogue', `/CN=${deviceCn}`, 'rogue-ca', 'extendedKeyUsage=clientAuth\n');
  const caPath = path.join(dir, 'ca.crt');
  return { ca: fs.readFileSync(caPath, 'utf8'), caPath, server, device, rogue };
}
