export interface TensorData {
    shape: number[];
    data: number[];
}
export declare const SPEC: {
    readonly model: "adding-bidir";
    readonly source: "graphs/adding-bidir.ts";
    readonly compiler: "unfold 0.1.0";
    readonly batch: 16;
    readonly seqLen: 20;
    readonly inputs: readonly [{
        readonly name: "x";
        readonly shape: readonly [16, 20, 2];
    }];
    readonly target: {
        readonly shape: readonly [16, 20, 1];
    };
    readonly states: readonly [{
        readonly name: "h";
        readonly shape: readonly [4, 16, 16];
    }];
    readonly lengths: true;
    readonly dtype: "f32";
    readonly loss: "mse";
    readonly lossOver: "last";
    readonly optimizer: "adam(lr=0.01, betas=(0.9, 0.999), eps=1e-8)";
    readonly lr: 0.01;
    readonly carryState: false;
    readonly seed: 1234;
    readonly arenaBytes: 968924;
};
export interface TrainerOptions {
    /** Seed of the parameter init (mulberry32), default SPEC.seed. */
    seed?: number;
    /** Initial parameters by name, instead of the seeded init. */
    params?: Record<string, {
        data: ArrayLike<number>;
    } | ArrayLike<number>>;
    lr?: number;
    /** Carry the final state of a window, detached, into the next (truncated BPTT). */
    carryState?: boolean;
}
/**
 * Trains the recurrence over windows of T ≤ 20 steps (batch-first arrays, row-major): `step(x, target, lengths)`
 * runs forward, loss, backward and the optimizer. The recurrence runs as a graph of scans (the class Scans above).
 */
export declare class Trainer {
    private readonly scans;
    carryState: boolean;
    /** Steps in the last window (1 … 20). */
    T: number;
    /** The initial state of the next window, by state name. */
    private readonly initial;
    /** The data of a window as the scans read it: each sequence over all 20 steps (the window's first T, zeros after), the loss weights. */
    private readonly window;
    constructor(options?: TrainerOptions);
    /** Every value the trainer keeps: parameters, gradients, data, outputs, temporaries, optimizer state. */
    get arena(): Float32Array;
    get lr(): number;
    set lr(v: number);
    /** Optimizer steps taken (Adam's t). */
    get steps(): number;
    set steps(v: number);
    /** One training step on a window; returns the loss before the update. Throws, leaving the parameters untouched, when the loss or the gradient is not finite. */
    step(in_x: ArrayLike<number>, target: ArrayLike<number>, lengths?: ArrayLike<number>): number;
    /** Forward, loss and backward without an update (nor a state carry); returns the loss. Read the gradients with getGrads(). */
    gradients(in_x: ArrayLike<number>, target: ArrayLike<number>, lengths?: ArrayLike<number>): number;
    /** The outputs [B, T, 1] for the inputs of a window (T ≤ 20) from the current state, which is left unchanged. */
    predict(in_x: ArrayLike<number>, out?: Float64Array, lengths?: ArrayLike<number>): Float64Array;
    /** The outputs [B, T, 1] of the last step, gradients() or predict(). */
    outputs(out?: Float64Array): Float64Array;
    /** The top layer's output at every step of the last window, both directions side by side: [B, T, 32] (PyTorch's `output`; 0 at a row's padded steps). */
    hiddenOutputs(out?: Float64Array): Float64Array;
    /** Each state after the last window, by state name, in PyTorch's order (h_n, c_n): the initial state of the next window when the state is carried. */
    finalState(): Record<string, TensorData>;
    /** Re-initializes every parameter from a seed, as PyTorch's U(−1/√H, 1/√H), in declaration order. */
    initParams(seed: number): void;
    getParams(): Record<string, TensorData>;
    getGrads(): Record<string, TensorData>;
    /** Sets parameters by name; every name must be known and every size right. */
    setParams(values: Record<string, {
        data: ArrayLike<number>;
    } | ArrayLike<number>>): void;
    /** Whether every parameter is finite. */
    paramsFinite(): boolean;
    /** The carried state by name (the initial state of the next step). */
    getState(): Record<string, TensorData>;
    /** Sets the initial state of the next step, by state name. */
    setState(values: Record<string, ArrayLike<number>>): void;
    /** Zeros the carried state. */
    resetState(): void;
    /** The optimizer's step count and buffers (moments), for checkpoints. */
    getOptimizerState(): {
        steps: number;
        buffers: number[];
    };
    setOptimizerState(state: {
        steps: number;
        buffers: ArrayLike<number>;
    }): void;
    /** The window's data as the scans read it: T from the first sequence, each padded to 20 steps; the lengths (T for every row by default), the loss weights and their normalizer; the initial states. */
    private bind;
    /** A batch-first [B, T, k] array into its [B, 20, k] sequence: the window's T steps, zeros after. */
    private pad;
    /** With `carry`, the final states of the last call start the next window. */
    private keep;
    /** The window's first T steps of a [B, 20, k] output, batch-first. */
    private firstSteps;
}
export declare function createTrainer(options?: TrainerOptions): Trainer;
