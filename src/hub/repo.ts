import * as os from 'node:os';
import * as path from 'node:path';
import { ModtuneError } from '../errors.js';

export const DEFAULT_ENDPOINT = 'https://huggingface.co';
export const DEFAULT_REVISION = 'main';

/** A name part of a repo id: what the Hub allows ('--' and '..' are forbidden there too). */
const NAME_PART = /^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9_])?$/;
const MAX_REPO_ID_LENGTH = 96;

/**
 * Check a Hub repo id ('name' or 'namespace/name'). The id becomes a folder name in the cache, so
 * anything that could step outside it (absolute paths, '..', backslashes) is refused.
 */
export function validateRepoId(repoId: string): string {
  const bad = (why: string) =>
    new ModtuneError(`invalid repo id '${repoId}': ${why}; expected 'name' or 'namespace/name' (letters, digits, '-', '_', '.')`);
  if (typeof repoId !== 'string' || repoId === '') throw bad('it is empty');
  if (repoId.length > MAX_REPO_ID_LENGTH) throw bad(`it is longer than ${MAX_REPO_ID_LENGTH} characters`);
  if (path.isAbsolute(repoId) || path.win32.isAbsolute(repoId)) throw bad('it is an absolute path');
  const parts = repoId.split('/');
  const dots = parts.find((p) => p === '..' || p === '.');
  if (dots) throw bad(`'${dots}' is not a name`);
  if (parts.length > 2) throw bad('it has more than one /');
  for (const p of parts) {
    if (p.includes('--') || p.includes('..')) throw bad("'--' and '..' are not allowed");
    if (!NAME_PART.test(p)) throw bad(`'${p}' has characters outside [A-Za-z0-9._-] or starts/ends with '.' or '-'`);
  }
  return repoId;
}

/** Branch, tag or commit. Branches may contain '/', e.g. 'refs/pr/1'. */
export function validateRevision(revision: string): string {
  const ok = /^[A-Za-z0-9._/-]+$/.test(revision) && !revision.split('/').some((p) => p === '' || p === '.' || p === '..') && !revision.includes('--');
  if (!ok) throw new ModtuneError(`invalid revision '${revision}': expected a branch, tag or commit hash (letters, digits, '.', '_', '-', '/'; no '..' or '--')`);
  return revision;
}

export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.MODTUNE_CACHE || path.join(os.homedir(), '.cache', 'modtune');
}

/** `<cache>/hub/<namespace>--<name>/<revision with / → -->/`: one folder per repo and revision. */
export function repoCacheDir(cacheDir: string, repoId: string, revision: string): string {
  validateRepoId(repoId);
  validateRevision(revision);
  const root = path.resolve(cacheDir, 'hub');
  const dir = path.resolve(root, repoId.replace(/\//g, '--'), revision.replace(/\//g, '--'));
  const rel = path.relative(root, dir);
  // Validation makes this impossible; kept as the last line of defence for the filesystem.
  if (rel.startsWith('..') || path.isAbsolute(rel)) throw new ModtuneError(`repo '${repoId}' at '${revision}' maps outside the cache; refused`);
  return dir;
}

/** `<endpoint>/<repo>/resolve/<revision>/<file>`, each part URL-encoded. */
export function resolveUrl(endpoint: string, repoId: string, revision: string, file: string): string {
  const base = endpoint.replace(/\/+$/, '');
  const repo = repoId.split('/').map(encodeURIComponent).join('/');
  const name = file.split('/').map(encodeURIComponent).join('/');
  return `${base}/${repo}/resolve/${encodeURIComponent(revision)}/${name}`;
}

/** A file name the repo names itself (shards listed in an index): a plain name in the repo's root. */
export function validateRepoFileName(name: unknown, where: string): string {
  if (typeof name !== 'string' || !/^[A-Za-z0-9_][A-Za-z0-9._-]*$/.test(name) || name.includes('..')) {
    throw new ModtuneError(`${where}: file name ${JSON.stringify(name)} should be a plain file name (letters, digits, '.', '_', '-')`);
  }
  return name;
}
