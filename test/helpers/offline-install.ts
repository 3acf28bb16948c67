// Installing a packed unfold-rnn into a temporary project without the network: a lockfile made from
// the repository's own (the package's production closure at the exact locked versions and integrity
// hashes, plus typescript), so `npm ci --offline` takes every dependency from npm's cache — which the
// repository's `npm ci` has filled. A cache miss fails with npm's ENOTCACHED, never a download.
import * as fs from 'node:fs';
import * as path from 'node:path';

interface LockEntry {
  readonly version?: string;
  readonly dev?: boolean;
  readonly [key: string]: unknown;
}

/** Writes `dir/package-lock.json` and the dependencies of `dir/package.json` for the tarball `tgz` of the package at `root`. */
export function writeOfflineLock(root: string, dir: string, tgz: string): void {
  const lock = JSON.parse(fs.readFileSync(path.join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { name: string; version: string; dependencies: Record<string, string>; bin: Record<string, string> };
  const project = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name: string; version: string; dependencies?: Record<string, string> };
  const typescript = lock.packages['node_modules/typescript']?.version;
  if (typescript === undefined) throw new Error('package-lock.json locks no typescript');
  const file = `file:${path.relative(dir, tgz).split(path.sep).join('/')}`;
  project.dependencies = { [pkg.name]: file, typescript };
  fs.writeFileSync(path.join(dir, 'package.json'), `${JSON.stringify(project, null, 2)}\n`);
  const packages: Record<string, unknown> = {
    '': { name: project.name, version: project.version, dependencies: project.dependencies },
    [`node_modules/${pkg.name}`]: { version: pkg.version, resolved: file, dependencies: pkg.dependencies, bin: pkg.bin },
  };
  // The repository's dependencies sit at the same node_modules paths in the project (the package's are hoisted the same way).
  for (const [key, entry] of Object.entries(lock.packages)) {
    if (key === '' || (entry.dev === true && key !== 'node_modules/typescript')) continue;
    const { dev: _dev, ...rest } = entry;
    packages[key] = rest;
  }
  const out = { name: project.name, version: project.version, lockfileVersion: 3, requires: true, packages };
  fs.writeFileSync(path.join(dir, 'package-lock.json'), `${JSON.stringify(out, null, 2)}\n`);
}
