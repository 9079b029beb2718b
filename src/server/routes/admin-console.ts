import type { FastifyReply } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { StaticApp, notFound, pageHeaders } from '../static-app.js';

/**
 * The console's Content-Security-Policy: its own script and stylesheet only, calls to this origin only; `blob:`
 * images for the data-flow SVG fetched with the API key (an `<img>` never runs a script inside an SVG).
 */
export const ADMIN_CONSOLE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** Options of {@link adminConsoleRoutes}. */
export interface AdminConsoleOptions {
  /** The built console (default: dist/web/admin beside the compiled server or under the repository). */
  readonly webDir?: string | undefined;
}

/**
 * The admin console (docs/admin-console.md): the single-page app built into dist/web/admin, served at `/admin`
 * with a strict CSP. Any path under `/admin` without a file extension answers the page (client-side routes);
 * the page itself holds no data: it calls the `/v1` API with the API key the user pastes.
 */
export function adminConsoleRoutes(options: AdminConsoleOptions = {}): FastifyPluginAsyncZod {
  const webApp = new StaticApp('admin', options.webDir ?? process.env.CUSTODIAN_ADMIN_WEB_DIR);
  return async (app) => {
    const serve = async (reply: FastifyReply, path: string) => {
      pageHeaders(reply, ADMIN_CONSOLE_CSP);
      if (!webApp.built) return reply.code(503).type('text/plain; charset=utf-8').send('The admin console is not built: run npm run build.');
      const file = await webApp.load(path);
      if (file === undefined) return notFound(reply);
      return reply.type(file.type).header('cache-control', file.cacheControl).send(file.content);
    };
    app.get('/admin', { schema: { hide: true } }, async (_request, reply) => serve(reply, ''));
    app.get('/admin/*', { schema: { hide: true } }, async (request, reply) => serve(reply, (request.params as { '*': string })['*']));
  };
}
