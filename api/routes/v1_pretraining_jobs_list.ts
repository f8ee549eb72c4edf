// GET /v1/pretraining/jobs: built with the fine-tune list from views/job_routes.ts.
import { jobListOperation } from "./views/job_routes";

export const registerV1PretrainingJobsList = jobListOperation(
  "pretrain",
  "List pretraining jobs, newest first (curves and events only on GET one)",
);
