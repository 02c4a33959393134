/**
 * What an image says about running it: its config's Env, Entrypoint, Cmd, WorkingDir and User,
 * kept as `settings.image`; the service spec those give as defaults (`settings.service`); and
 * the names deploy-from-docker gives a tag's configuration and layer components.
 */
import path from 'node:path';
import { z } from 'zod';
import { ImageConfigSchema, ServiceSpecSchema, type ImageConfig, type ServiceSpec } from '../../protocol/service.ts';
import { nameProblem } from '../../protocol/names.ts';
import { StrataError } from '../errors.ts';
import { invalidImage } from './types.ts';

const RunConfig = z.looseObject({
  Env: z.array(z.string()).nullish(),
  Entrypoint: z.array(z.string()).nullish(),
  Cmd: z.array(z.string()).nullish(),
  WorkingDir: z.string().nullish(),
  User: z.string().nullish(),
});
const ImageConfigDocument = z.looseObject({ config: RunConfig.nullish() });

/** The PATH a container gets when its image sets none (Docker's default). */
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** `settings.image` from a parsed image config document. */
export function imageSettings(document: unknown, ref: string | undefined): ImageConfig {
  const parsed = ImageConfigDocument.safeParse(document);
  if (!parsed.success) throw invalidImage(`the image config is malformed: ${parsed.error.issues[0]?.message ?? 'unexpected shape'}`);
  const run = parsed.data.config ?? {};
  const env: Record<string, string> = {};
  for (const item of run.Env ?? []) {
    const at = item.indexOf('=');
    if (at > 0) env[item.slice(0, at)] = item.slice(at + 1);
  }
  return ImageConfigSchema.parse({
    ...(ref ? { ref } : {}),
    env,
    entrypoint: run.Entrypoint ?? [],
    cmd: run.Cmd ?? [],
    ...(run.WorkingDir ? { workdir: run.WorkingDir } : {}),
    ...(run.User ? { user: run.User } : {}),
  });
}

/** The configuration name a reference gives: `:`, `/` and `@` become `.` (deploy-from-docker's rule). */
export function nameFromRef(ref: string): string {
  return ref.replace(/[:/@]/g, '.');
}

/** Throws INVALID_NAME unless `name` (and so `name.l<N>`) is a valid configuration and component name. */
export function assertImageName(name: string, layers: number): void {
  const longest = `${name}.l${Math.max(0, layers - 1)}`;
  const problem = nameProblem(name) ?? nameProblem(longest);
  if (problem) throw new StrataError('INVALID_NAME', `configuration name ${JSON.stringify(name)} ${problem}; choose one with --name`, { details: { configuration: name } });
}

/** The directories of the image's PATH, relative to the root, in search order. */
export function searchPath(image: ImageConfig): string[] {
  return (image.env['PATH'] ?? DEFAULT_PATH).split(':').filter((dir) => dir.startsWith('/')).map((dir) => path.posix.normalize(dir).replace(/^\/+|\/+$/g, ''));
}

/**
 * `settings.service` from the image config: the program is the first word of ENTRYPOINT (or of
 * CMD without one), relative to the release root; a bare name is looked up in the image's PATH
 * among the files the merged tree has (`exists`). The rest of ENTRYPOINT, then CMD, are its args.
 */
export function serviceFromImage(image: ImageConfig, exists: (relative: string) => boolean): ServiceSpec {
  const argv = image.entrypoint.length > 0 ? [...image.entrypoint, ...image.cmd] : image.cmd;
  const program = argv[0];
  if (program === undefined || program === '') throw invalidImage('the image has no ENTRYPOINT or CMD, so --service has no program to run; set settings.service yourself');
  let command: string;
  if (program.includes('/')) {
    command = path.posix.normalize(program.startsWith('/') ? program : path.posix.join(image.workdir ?? '/', program)).replace(/^\/+/, '');
  } else {
    const dir = searchPath(image).find((candidate) => exists(candidate === '' ? program : `${candidate}/${program}`));
    if (dir === undefined) throw invalidImage(`the image's program ${JSON.stringify(program)} is not in its PATH, so --service cannot name it; set settings.service yourself`);
    command = dir === '' ? program : `${dir}/${program}`;
  }
  const workdir = image.workdir ? path.posix.normalize(image.workdir).replace(/^\/+|\/+$/g, '') : '';
  const env = Object.fromEntries(Object.entries(image.env).filter(([key]) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(key)));
  const spec = ServiceSpecSchema.safeParse({
    command, args: argv.slice(1), env,
    ...(workdir ? { workdir } : {}),
    ...(image.user ? { user: image.user } : {}),
  });
  if (!spec.success) throw invalidImage(`the image config does not make a valid service spec: ${spec.error.issues[0]?.path.join('.')}: ${spec.error.issues[0]?.message}`);
  return spec.data;
}
