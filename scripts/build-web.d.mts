/** The privacy center page's source folder (web/privacy). */
export declare const WEB_ROOT: string;
/** Where `npm run build` writes the page: dist/web/privacy. */
export declare const WEB_OUTDIR: string;
/** Builds the page with Vite into `outDir` (default dist/web/privacy); resolves to the folder. */
export declare function buildWeb(options?: { outDir?: string }): Promise<string>;
/** The admin console's source folder (web/admin). */
export declare const ADMIN_ROOT: string;
/** Where `npm run build` writes the console: dist/web/admin. */
export declare const ADMIN_OUTDIR: string;
/** Builds the admin console with Vite into `outDir` (default dist/web/admin); resolves to the folder. */
export declare function buildAdmin(options?: { outDir?: string }): Promise<string>;
