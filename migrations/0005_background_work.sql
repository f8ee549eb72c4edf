ALTER TABLE `datasets` ADD `check_state` text;--> statement-breakpoint
ALTER TABLE `evaluations` ADD `status` text DEFAULT 'succeeded' NOT NULL;--> statement-breakpoint
ALTER TABLE `evaluations` ADD `request` text;--> statement-breakpoint
ALTER TABLE `evaluations` ADD `state` text;--> statement-breakpoint
ALTER TABLE `evaluations` ADD `error` text;--> statement-breakpoint
ALTER TABLE `evaluations` ADD `updated_at` integer;--> statement-breakpoint
ALTER TABLE `evaluations` ADD `completed_at` integer;--> statement-breakpoint
ALTER TABLE `probes` ADD `status` text DEFAULT 'ready' NOT NULL;--> statement-breakpoint
ALTER TABLE `probes` ADD `request` text;--> statement-breakpoint
ALTER TABLE `probes` ADD `state` text;--> statement-breakpoint
ALTER TABLE `probes` ADD `error` text;--> statement-breakpoint
ALTER TABLE `probes` ADD `updated_at` integer;