ALTER TABLE `training_jobs` ADD `checkpoint_sha256` text;--> statement-breakpoint
ALTER TABLE `training_jobs` ADD `checkpoint_bytes` integer;