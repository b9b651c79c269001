/**
 * The one check of a Unix socket path, shared by `listen({ path })` and
 * `connect({ path })` (all engines): the kernel's sun_path holds 108 bytes
 * with the terminating NUL, and a NUL inside would cut the name short.
 */
import { invalidOption } from './errors';

/** Longest path in bytes (sun_path is 108 bytes on Linux, NUL included). */
export const MAX_SOCKET_PATH = 107;

/** `value` when it is a usable Unix socket path, else throws EINVALID_OPTION for option `name`. */
export function checkSocketPath(value: unknown, name = 'path'): string {
  const expected = `a non-empty file path of at most ${MAX_SOCKET_PATH} bytes, without NUL`;
  if (typeof value !== 'string' || value === '' || value.includes('\0') || Buffer.byteLength(value) > MAX_SOCKET_PATH) {
    throw invalidOption(name, expected, value);
  }
  return value;
}
