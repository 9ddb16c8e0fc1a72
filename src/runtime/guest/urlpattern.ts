/** urlpattern-polyfill's class, built as a lazy module (see lazy-modules.ts). */
export { URLPattern } from "urlpattern-polyfill/urlpattern";
