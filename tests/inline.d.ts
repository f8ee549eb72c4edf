// Vite turns `import x from "./image.png?inline"` into the file as a `data:` URL, the one way a
// binary fixture reaches the workerd test isolate without a binding.
declare module "*?inline" {
  const dataUrl: string;
  export default dataUrl;
}
