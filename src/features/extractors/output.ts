/** Where a feature function writes: a frame vector (Float32) or an analyser scratch (Float64). */
export type FeatureOutput = Float32Array | Float64Array;
