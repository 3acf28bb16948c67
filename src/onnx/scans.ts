// What a model's scans are and how they are wired: the one place export asks it. Today it reads a
// Recurrence (one scan) or a program's stages (src/dsl/program.ts); when scans are an IR primitive,
// only this function changes.
import type { Node } from '../ir/node.ts';
import type { Named, Recurrence } from '../dsl/recurrence.ts';
import { topStages } from '../dsl/program.ts';

/** Where a scan's per-step input comes from. */
export type ScanSource =
  | { readonly data: string } // the model's input of that name, [B, T, ...]
  | { readonly scan: number; readonly output: number }; // an earlier scan's per-step output (same t)

export interface ScanSpec {
  /** The step: state placeholders `state`, per-step inputs `input`, `next` states, per-step `outputs`. */
  readonly body: Recurrence;
  readonly reverse: boolean;
  /** Its slot in the leading [L·D] axis of the model's states; undefined when the model is this one scan. */
  readonly slot: number | undefined;
  /** Aligned with body.input. */
  readonly sources: readonly ScanSource[];
  /** Under lengths: the body's validity placeholder, bound to valid(t) [B, 1]. */
  readonly mask?: Node;
}

export interface Scans {
  /** In execution order: every source is an earlier scan. */
  readonly scans: readonly ScanSpec[];
  /** The model's per-step outputs and which scan output each is. */
  readonly outputs: readonly { readonly name: string; readonly scan: number; readonly output: number }[];
  /** A program's top-layer outputs (directions side by side: its hidden outputs [B, T, D·H]); absent for one scan. */
  readonly top?: readonly { readonly scan: number; readonly output: number }[];
  /** The model's states (a program's are [L·D, ...]). */
  readonly state: readonly Named[];
  /** The model's data inputs. */
  readonly input: readonly Named[];
  /** L·D for a program, else 1. */
  readonly slots: number;
}

/**
 * The model's scans in execution order and how they are wired. When scans are `scan` nodes of the IR
 * (a node carrying its body graph, with carries, xs and consts as operands), this reads them from the
 * graph instead: body ← the node's body, reverse ← its attribute, sources ← its xs operands (a model
 * input or another scan's stacked output), outputs ← the reshape(slice(…)) parts its users take.
 */
export function scansOf(rec: Recurrence): Scans {
  const program = rec.program;
  if (!program) {
    return {
      scans: [{ body: rec, reverse: false, slot: undefined, sources: rec.input.map((x) => ({ data: x.name })), ...(rec.valid ? { mask: rec.valid } : {}) }],
      outputs: rec.outputs.map((o, k) => ({ name: o.name, scan: 0, output: k })),
      state: rec.state,
      input: rec.input,
      slots: 1,
    };
  }
  const scans = program.stages.map((st): ScanSpec => ({
    body: st.rec,
    reverse: st.reverse,
    slot: st.slot,
    sources: st.sources.map((s) => ('data' in s ? { data: rec.input[s.data]!.name } : { scan: s.stage, output: s.output })),
    ...(st.rec.valid ? { mask: st.rec.valid } : {}),
  }));
  const last = program.stages.length - 1;
  return {
    scans,
    outputs: rec.outputs.map((o, k) => ({ name: o.name, scan: last, output: k })),
    top: topStages(program).map(({ stage, index }) => ({ scan: index, output: stage.layerOutput })),
    state: rec.state,
    input: rec.input,
    slots: program.layers * program.directions,
  };
}
