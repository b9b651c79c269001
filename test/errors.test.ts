import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tryLoadNative } from '../src/engines/native/binding';
import { apiCodes, closeReasons, EdgepollError, engineCodes, invalidOption } from '../src/errors';

describe('error codes', () => {
  it('native/errors.h and src/errors.ts list the same codes in the same order', () => {
    const header = fs.readFileSync(path.join(__dirname, '..', 'native', 'errors.h'), 'utf8');
    const fromHeader = [...header.matchAll(/^\s*X\((\w+),\s*"([^"]*)"\)/gm)].map((m) => m[1]);
    expect(fromHeader).toEqual([...engineCodes]);
  });

  it('native/errors.h and src/errors.ts give the same CLOSE reasons', () => {
    const header = fs.readFileSync(path.join(__dirname, '..', 'native', 'errors.h'), 'utf8');
    const reasons = Object.fromEntries(
      [...header.matchAll(/^\s*X\((\w+),\s*"([^"]*)"\)/gm)].filter((m) => m[2] !== '').map((m) => [m[1], m[2]]),
    );
    expect(reasons).toEqual(closeReasons);
  });

  it.skipIf(!tryLoadNative())('the loaded addon exports the same list', () => {
    expect(tryLoadNative()!.errorNames).toEqual([...engineCodes]);
  });

  it('EdgepollError carries a code and a readable message', () => {
    const error = new EdgepollError('EFRAME_TOO_LARGE');
    expect(error).toBeInstanceOf(Error);
    expect(error.code).toBe('EFRAME_TOO_LARGE');
    expect(error.message).toBe('frame too large');
    expect(invalidOption('threads', 'an integer from 1 to 64', 0).message).toBe(
      'option `threads` must be an integer from 1 to 64, got 0',
    );
  });
});

describe('no dead codes', () => {
  it('every code edgepoll lists is raised somewhere (src/ outside errors.ts, or native/ as kCODE)', () => {
    const read = (dir: string, ext: RegExp): string =>
      fs
        .readdirSync(dir, { recursive: true, encoding: 'utf8' })
        .filter((file) => ext.test(file) && !/^errors\.(ts|h)$/.test(file))
        .map((file) => fs.readFileSync(path.join(dir, file), 'utf8'))
        .join('\n');
    const ts = read(path.join(__dirname, '..', 'src'), /\.ts$/);
    const native = read(path.join(__dirname, '..', 'native'), /\.(cc|h)$/);
    const unused = [...engineCodes.filter((code) => code !== 'OK'), ...apiCodes].filter(
      (code) => !ts.includes(`'${code}'`) && !native.includes(`k${code}`),
    );
    expect(unused).toEqual([]);
  });

  it('the cluster engine sets no environment variable nothing reads', () => {
    const src = path.join(__dirname, '..', 'src');
    const text = fs
      .readdirSync(src, { recursive: true, encoding: 'utf8' })
      .filter((file) => file.endsWith('.ts'))
      .map((file) => fs.readFileSync(path.join(src, file), 'utf8'))
      .join('\n');
    expect(text).not.toMatch(/EDGEPOLL_CLUSTER_WORKER/);
  });
});
