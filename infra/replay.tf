# The api's replay_dead_letters (shared/services/dead_letter_replay.py) pulls and acknowledges the dead letters on
# every -sink subscription; it republishes them to their topics through the api's publish_topics (functions.tf).
resource "google_pubsub_subscription_iam_member" "api_reads_dead_letters" {
  for_each     = local.pushed_topics
  project      = var.project_id
  subscription = google_pubsub_subscription.dead_letter_sink[each.key].name
  role         = "roles/pubsub.subscriber"
  member       = "serviceAccount:${module.functions["api"].service_account_email}"
}
