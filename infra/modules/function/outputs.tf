output "name" {
  description = "The deployed function's id."
  value       = google_cloudfunctions2_function.this.name
}

output "url" {
  description = "The function's URL."
  value       = google_cloudfunctions2_function.this.service_config[0].uri
}

output "service_account_email" {
  description = "The function's runtime service account."
  value       = google_service_account.runtime.email
}

output "subscription" {
  description = "The push subscription that triggers it, if any."
  value       = local.pushed ? google_pubsub_subscription.push[0].name : null
}

output "dead_letter_topic" {
  description = "The dead-letter topic of its push subscription, if any (shared with the other functions on its topic)."
  value       = local.pushed ? var.dead_letter_topic : null
}

output "scheduler_job" {
  description = "Its Cloud Scheduler job, if any."
  value       = local.scheduled ? google_cloud_scheduler_job.this[0].name : null
}
