/**
 * The registry's operations — deployctl's verbs and Strata's own — over any Store. The HTTP API
 * and the SSH console both call these, so they validate, resolve and audit identically.
 */
import { isStrataError, StrataError } from './errors.ts';
import { configurationId } from './configuration-id.ts';
import { layersProblem, nameProblem, type LayerRef } from '../protocol/names.ts';
import type { ComponentVersion, Configuration, ResolvedLayer, Store } from '../store/contract.ts';

/** How many times a read-modify-write is retried when another writer got there first. */
const CAS_ATTEMPTS = 5;

/** Throws INVALID_NAME unless `value` is a valid name. */
export function assertName(what: string, value: string): void {
  const problem = nameProblem(value);
  if (problem) throw new StrataError('INVALID_NAME', `${what} name ${JSON.stringify(value)} ${problem}`, { details: { [what]: value } });
}

/** Registry operations bound to one store; every write is audited with its outcome. */
export class Registry {
  readonly store: Store;

  constructor(store: Store) {
    this.store = store;
  }

  /** Runs a write and records it in the audit log, whether it succeeds or fails. */
  async audited<T>(actor: string, action: string, target: string, details: Record<string, unknown>, run: () => Promise<T>): Promise<T> {
    try {
      const result = await run();
      await this.store.appendAudit({ actor, action, target, result: 'ok', details });
      return result;
    } catch (error) {
      const code = isStrataError(error) ? error.code : 'INTERNAL';
      await this.store.appendAudit({ actor, action, target, result: code, details });
      throw error;
    }
  }

  /** deployctl addver: names an uploaded blob as a new, immutable version. */
  addVersion(actor: string, input: { component: string; version: string; blob: string }): Promise<ComponentVersion> {
    return this.audited(actor, 'version.add', `${input.component}:${input.version}`, { blob: input.blob }, async () => {
      assertName('component', input.component);
      assertName('version', input.version);
      if (!/^[0-9a-f]{64}$/.test(input.blob)) throw new StrataError('INVALID_HASH', `hash ${JSON.stringify(input.blob)} is not 64 lower-case hex digits`);
      return this.store.addVersion({ ...input, actor });
    });
  }

  /** A configuration's current revision; CONFIGURATION_NOT_FOUND if absent. */
  async configuration(name: string): Promise<Configuration> {
    const found = await this.store.getConfiguration(name);
    if (!found) throw new StrataError('CONFIGURATION_NOT_FOUND', `configuration ${JSON.stringify(name)} not found`, { details: { name } });
    return found;
  }

  /** Resolves layer references to the blobs their versions name, refusing bad or unknown ones. */
  async resolveLayers(layers: readonly LayerRef[]): Promise<ResolvedLayer[]> {
    for (const layer of layers) {
      assertName('component', layer.component);
      assertName('version', layer.version);
    }
    const problem = layersProblem(layers);
    if (problem) throw new StrataError('INVALID_LAYERS', problem);
    const resolved: ResolvedLayer[] = [];
    for (const layer of layers) {
      const found = await this.store.getVersion(layer.component, layer.version);
      if (!found) throw await this.missingVersion(layer.component, layer.version);
      resolved.push({ component: found.component, version: found.version, blob: found.blob, size: found.size, createdAt: found.createdAt });
    }
    return resolved;
  }

  /** The right error for a version that does not exist: its component may be missing too. */
  private async missingVersion(component: string, version: string): Promise<StrataError> {
    const versions = await this.store.listVersions(component).catch(() => []);
    if (versions.length === 0) return new StrataError('COMPONENT_NOT_FOUND', `component ${JSON.stringify(component)} not found`, { details: { component } });
    return new StrataError('VERSION_NOT_FOUND', `version ${JSON.stringify(version)} of component ${JSON.stringify(component)} not found`, { details: { component, version } });
  }

  /**
   * deployctl addconf: sets a configuration's layers (and settings). Refuses to replace an
   * existing one unless `force`; `expectedRevision` makes the replacement compare-and-set.
   */
  putConfiguration(actor: string, input: { name: string; layers: LayerRef[]; settings?: Record<string, unknown>; force?: boolean; expectedRevision?: number; note?: string }): Promise<Configuration> {
    const details = { layers: input.layers.map((l) => `${l.component}:${l.version}`), force: input.force ?? false };
    return this.audited(actor, 'configuration.put', input.name, details, async () => {
      assertName('configuration', input.name);
      const layers = await this.resolveLayers(input.layers);
      const id = configurationId(layers.map((l) => l.blob), input.settings);
      const current = await this.store.getConfiguration(input.name);
      if (current && input.expectedRevision === undefined && !input.force) {
        throw new StrataError('CONFIGURATION_EXISTS', `configuration ${JSON.stringify(input.name)} already exists; use --force to replace it`, { details: { name: input.name, revision: current.revision } });
      }
      const expectedRevision = input.expectedRevision ?? current?.revision ?? 0;
      return this.store.putConfiguration({ name: input.name, layers, ...(input.settings ? { settings: input.settings } : {}), id, expectedRevision, actor, ...(input.note ? { note: input.note } : {}) });
    });
  }

  /**
   * Applies a change computed from the current revision, retrying when another writer commits in
   * between, so concurrent changes to different layers both land and none is lost. Returns the
   * current revision unchanged when `change` returns undefined (nothing to do).
   */
  private async modify(actor: string, name: string, note: string, change: (current: Configuration) => Promise<ResolvedLayer[] | undefined>): Promise<{ configuration: Configuration; changed: boolean }> {
    for (let attempt = 1; ; attempt++) {
      const current = await this.configuration(name);
      const layers = await change(current);
      if (!layers) return { configuration: current, changed: false };
      const id = configurationId(layers.map((l) => l.blob), current.settings);
      try {
        const configuration = await this.store.putConfiguration({ name, layers, ...(current.settings ? { settings: current.settings } : {}), id, expectedRevision: current.revision, actor, note });
        return { configuration, changed: true };
      } catch (error) {
        if (!isStrataError(error, 'REVISION_CONFLICT') || attempt >= CAS_ATTEMPTS) throw error;
      }
    }
  }

  /** Replaces the version of one component in a configuration's layers. */
  private async replaceLayer(current: Configuration, component: string, version: string): Promise<ResolvedLayer[] | undefined> {
    const index = current.layers.findIndex((l) => l.component === component);
    if (index < 0) throw new StrataError('COMPONENT_NOT_FOUND', `configuration ${JSON.stringify(current.name)} has no layer of component ${JSON.stringify(component)}`, { details: { name: current.name, component } });
    if (current.layers[index]!.version === version) return undefined;
    const [resolved] = await this.resolveLayers([{ component, version }]);
    const layers = [...current.layers];
    layers[index] = resolved!;
    return layers;
  }

  /** deployctl changeconf: points one layer of a configuration at another version of its component. */
  changeLayer(actor: string, input: { name: string; component: string; version: string }): Promise<{ configuration: Configuration; changed: boolean }> {
    return this.audited(actor, 'configuration.change', input.name, { component: input.component, version: input.version }, () => {
      assertName('component', input.component);
      assertName('version', input.version);
      return this.modify(actor, input.name, `changeconf ${input.component}:${input.version}`, (current) => this.replaceLayer(current, input.component, input.version));
    });
  }

  /** deployctl bumpconf: points one layer at the newest version of its component; no change when already there. */
  bumpLayer(actor: string, input: { name: string; component: string }): Promise<{ configuration: Configuration; changed: boolean }> {
    return this.audited(actor, 'configuration.bump', input.name, { component: input.component }, () => {
      assertName('component', input.component);
      return this.modify(actor, input.name, `bumpconf ${input.component}`, async (current) => {
        const versions = await this.store.listVersions(input.component);
        const newest = versions.at(-1)!;
        return this.replaceLayer(current, input.component, newest.version);
      });
    });
  }

  /** Every revision of a configuration, oldest first. */
  async history(name: string): Promise<Configuration[]> {
    await this.configuration(name);
    return this.store.configurationHistory(name);
  }

  /**
   * Writes a new revision with the layers and settings of an earlier one (default: the one
   * before the current). History is never rewritten: a rollback is itself a revision.
   */
  rollback(actor: string, input: { name: string; to?: number }): Promise<Configuration> {
    return this.audited(actor, 'configuration.rollback', input.name, input.to === undefined ? {} : { to: input.to }, async () => {
      const history = await this.history(input.name);
      const current = history.at(-1)!;
      const targetRevision = input.to ?? current.revision - 1;
      const target = history.find((c) => c.revision === targetRevision);
      if (input.to === undefined && !target) throw new StrataError('NOTHING_TO_ROLL_BACK', `configuration ${JSON.stringify(input.name)} has no revision before ${current.revision}`);
      if (!target) throw new StrataError('REVISION_NOT_FOUND', `configuration ${JSON.stringify(input.name)} has no revision ${targetRevision}`, { details: { name: input.name, revision: targetRevision } });
      const layers = await this.resolveLayers(target.layers);
      const id = configurationId(layers.map((l) => l.blob), target.settings);
      return this.store.putConfiguration({ name: input.name, layers, ...(target.settings ? { settings: target.settings } : {}), id, expectedRevision: current.revision, actor, note: `rollback to revision ${target.revision}` });
    });
  }

  /** deployctl delconf: removes a configuration and its history; requires `force`. */
  deleteConfiguration(actor: string, input: { name: string; force: boolean; expectedRevision?: number }): Promise<void> {
    return this.audited(actor, 'configuration.delete', input.name, {}, async () => {
      if (!input.force) throw new StrataError('CONFIRMATION_REQUIRED', 'Run command with -force flag to confirm removal');
      await this.configuration(input.name);
      await this.store.deleteConfiguration(input.name, { actor, ...(input.expectedRevision === undefined ? {} : { expectedRevision: input.expectedRevision }) });
    });
  }

  /** deployctl delver: removes a version no configuration uses. */
  deleteVersion(actor: string, input: { component: string; version: string }): Promise<void> {
    return this.audited(actor, 'version.delete', `${input.component}:${input.version}`, {}, async () => {
      if (!(await this.store.getVersion(input.component, input.version))) throw await this.missingVersion(input.component, input.version);
      await this.store.deleteVersion(input.component, input.version);
    });
  }

  /** deployctl delcomp: removes every version of a component no configuration uses. */
  deleteComponent(actor: string, input: { component: string }): Promise<void> {
    return this.audited(actor, 'component.delete', input.component, {}, () => this.store.deleteComponent(input.component));
  }
}
