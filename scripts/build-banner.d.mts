/** Path of the banner's entry point (banner/src/main.ts). */
export declare const BANNER_ENTRY: string;
/** Where `npm run build` writes the banner: dist/banner/banner.js. */
export declare const BANNER_OUTFILE: string;
/** Bundles and minifies the banner; with `write: false` nothing is written. Resolves to the built code. */
export declare function buildBanner(options?: { outfile?: string; write?: boolean }): Promise<string>;
