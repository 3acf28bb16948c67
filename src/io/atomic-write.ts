// Atomic file replacement: a reader sees the old contents or the new, never a partial file or a stray temp file.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { UnfoldError } from '../ir/errors.ts';

const OS_REASONS: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EISDIR: 'it is a directory',
  ENOTDIR: 'a component of the path is not a directory',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EEXIST: 'file already exists',
  EMFILE: 'too many open files',
  ENAMETOOLONG: 'file name too long',
  ELOOP: 'too many levels of symbolic links',
  EBUSY: 'resource busy',
  EIO: 'input/output error',
  ENOTEMPTY: 'directory not empty',
  EXDEV: 'cross-device link',
};

/** A short human reason for an error thrown by `node:fs`, e.g. `permission denied (EACCES)`. */
export function describeOsError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    if (typeof code === 'string') {
      const reason = OS_REASONS[code];
      if (reason !== undefined) return `${reason} (${code})`;
    }
    return err.message;
  }
  return String(err);
}

function errCode(err: unknown): string | undefined {
  return err instanceof Error ? (err as NodeJS.ErrnoException).code : undefined;
}

let tempCounter = 0;

/**
 * Replaces `file` with `contents` (text as UTF-8, or bytes) atomically: writes a temp file in the same directory
 * (`.<name>.<pid>.<n>.tmp`), fsyncs it, renames it over the target, then fsyncs the directory.
 * If `file` is a symbolic link, the file it points to is replaced. On any failure the temp file is
 * removed, the target is left as it was, and an UnfoldError names the path and the OS reason.
 */
export function writeFileAtomic(file: string, contents: string | Uint8Array): void {
  let target = file;
  try {
    target = fs.realpathSync(file);
  } catch {
    // Not there yet (or a dangling link): write the path as given.
  }
  const dir = path.dirname(target);
  const base = path.basename(target);

  let mode: number | undefined;
  try {
    const st = fs.statSync(target);
    if (st.isFile()) mode = st.mode & 0o7777;
  } catch {
    // New file: default mode.
  }

  let tmp = '';
  let fd: number | undefined;
  try {
    // Open a fresh temp name; 'wx' never clobbers someone else's temp file.
    for (;;) {
      tmp = path.join(dir, `.${base}.${process.pid}.${tempCounter++}.tmp`);
      try {
        fd = fs.openSync(tmp, 'wx', 0o666);
        break;
      } catch (err) {
        if (errCode(err) !== 'EEXIST') {
          tmp = '';
          throw err;
        }
      }
    }
    if (mode !== undefined) fs.fchmodSync(fd, mode);
    if (typeof contents === 'string') fs.writeFileSync(fd, contents, 'utf8');
    else fs.writeFileSync(fd, contents);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, target);
    tmp = '';
  } catch (err) {
    if (fd !== undefined) {
      try {
        fs.closeSync(fd);
      } catch {
        // Already failing; the original error is the one to report.
      }
    }
    if (tmp !== '') {
      try {
        fs.unlinkSync(tmp);
      } catch {
        // Nothing more can be done.
      }
    }
    throw new UnfoldError(`cannot write ${file}: ${writeReason(err, dir)}`);
  }
  syncDirectory(dir);
}

function writeReason(err: unknown, dir: string): string {
  const code = errCode(err);
  if (code === 'ENOENT' && !fs.existsSync(dir)) return `directory ${dir} does not exist (ENOENT)`;
  if (code === 'EISDIR') return 'the path is a directory (EISDIR)';
  return describeOsError(err);
}

/** Makes the rename durable where the platform allows fsync on a directory; best effort. */
function syncDirectory(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // Some platforms (Windows) or file systems refuse; the rename itself already happened.
  } finally {
    if (fd !== undefined) {
      try {
        fs.closeSync(fd);
      } catch {
        // Ignore.
      }
    }
  }
}

/**
 * `mkdir -p` one level at a time. Node's own `mkdirSync(dir, { recursive: true })` spins forever
 * when a parent exists but refuses children with ENOENT (any path under /proc on Linux: it reads
 * ENOENT as "parent missing", re-creates the parent, gets EEXIST, and retries the child).
 */
export function makeDirectory(dir: string): void {
  const missing: string[] = [];
  for (let p = path.resolve(dir); !fs.existsSync(p); p = path.dirname(p)) {
    missing.push(p);
    if (path.dirname(p) === p) break;
  }
  for (const d of missing.reverse()) {
    try {
      fs.mkdirSync(d);
    } catch (err) {
      if (errCode(err) !== 'EEXIST') throw err; // created meanwhile by someone else: fine
    }
  }
  if (!fs.statSync(dir).isDirectory()) throw Object.assign(new Error(`file already exists: ${dir}`), { code: 'EEXIST' });
}
