/**
 * The parts of `fflate` the compression streams use, gathered so the bundler keeps only these and
 * loads them on first use: compression.ts `require()`s this module, which defers its evaluation.
 */
export { Deflate, Gzip, Inflate, Zlib } from "fflate";
