// The Scalar standalone bundle, imported as text (`with { type: "text" }`) by api/routes/docs.ts.
declare module "*/standalone.js" {
  const source: string;
  export default source;
}
