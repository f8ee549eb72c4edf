// POST /v1/pretraining/jobs/{id}/cancel: built with the fine-tune one from views/job_routes.ts.
import { jobCancelOperation } from "./views/job_routes";

export const registerV1PretrainingJobsCancel = jobCancelOperation(
  "pretrain",
  "Cancel a job: a queued one at once, a running one at its trainer's next heartbeat",
);
