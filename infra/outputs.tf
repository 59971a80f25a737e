output "bucket" {
  description = "The datasets bucket (STT_BUCKET)."
  value       = google_storage_bucket.data.name
}

output "topics" {
  description = "The topics the outside world publishes to, by name."
  value       = { for name, topic in google_pubsub_topic.topics : name => topic.id }
}

output "dead_letter_topics" {
  description = "Dead-letter topic of each topic that pushes to functions, by source topic."
  value       = { for topic, dl in google_pubsub_topic.dead_letter : topic => dl.name }
}

output "dead_letter_sinks" {
  description = "Pull subscriptions that keep the dead letters, by source topic: `gcloud pubsub subscriptions pull <sink>` reads them."
  value       = { for topic, sink in google_pubsub_subscription.dead_letter_sink : topic => sink.name }
}

output "function_urls" {
  description = "URL of each function (IAM-protected: call with an identity token)."
  value       = { for name, fn in module.functions : name => fn.url }
}

output "runtime_service_accounts" {
  description = "The runtime service account of each function."
  value       = { for name, fn in module.functions : name => fn.service_account_email }
}

output "invoker_service_account" {
  description = "The identity of the push subscriptions and scheduler jobs."
  value       = google_service_account.invoker.email
}

output "firestore_database" {
  description = "The Firestore database."
  value       = google_firestore_database.main.name
}
