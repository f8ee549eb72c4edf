// Placeholder until D-pages writes this page (it owns this file and replaces it).
import { el, type Page } from "../page";

export const page: Page = {
  title: "Playground",
  async render(view) {
    view.replaceChildren(el("h1", null, "Playground"), el("p", { class: "muted" }, "Coming soon."));
  },
};
