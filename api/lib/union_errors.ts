import type { z } from "@hono/zod-openapi";
import { badRequest, zodFieldErrors } from "./errors";

type Issue = z.core.$ZodIssue;

/** Whether a union branch's input had the branch's shape (its issues are inside it, not at its root). */
function matches(branch: Issue[]): boolean {
  return branch.every((i) => {
    if (i.path.length > 0) return true;
    if (i.code === "invalid_type") return false;
    if (i.code === "invalid_union") return i.errors.some(matches);
    return true;
  });
}

/**
 * zod reports a failed union as one issue at the union ("send an array or {dataset}"), which hides
 * that `train[3].label` is what is missing. When the input had one branch's shape, report that
 * branch's issues at their full paths instead.
 */
export function expandUnionIssues(issue: Issue, prefix: PropertyKey[] = []): Issue[] {
  const path = [...prefix, ...issue.path];
  if (issue.code === "invalid_union") {
    const branch = issue.errors.find(matches);
    if (branch) return branch.flatMap((i) => expandUnionIssues(i, path));
  }
  return [{ ...issue, path } as Issue];
}

/** A route hook (`app.openapi(route, handler, unionAwareHook)`) with the default hook's 400, unions expanded. */
export const unionAwareHook = (result: { success: boolean; error?: z.ZodError; target: string }): undefined => {
  if (!result.success && result.error) {
    const issues = result.error.issues.flatMap((i) => expandUnionIssues(i));
    const errors = zodFieldErrors(issues, result.target === "json" ? undefined : result.target);
    const first = errors[0];
    throw badRequest(first ? `${first.path}: ${first.message}` : "Invalid request.", errors);
  }
  return undefined;
};
