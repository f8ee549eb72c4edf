// POST /v1/finetuning/jobs/{id}/cancel: built with the pretraining one from views/job_routes.ts.
import { jobCancelOperation } from "./views/job_routes";

export const registerV1FinetuningJobsCancel = jobCancelOperation(
  "finetune",
  "Cancel a fine-tune job: a queued one at once, a running one at its trainer's next heartbeat",
);
