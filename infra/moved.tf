# The dead-letter topics, their publisher grants and their -sink subscriptions used to live in each
# function's module; they are now one per topic in main.tf. These blocks carry an existing state over
# (no topic is recreated, no retained dead letter lost) for the default topic names of variables.tf;
# a deployment with other topic names moves them by hand with `terraform state mv`, as infra/README.md shows.
# Delete this file once every deployment has applied it.

moved {
  from = module.functions["record_failure"].google_pubsub_topic.dead_letter[0]
  to   = google_pubsub_topic.dead_letter["transcription-failures"]
}

moved {
  from = module.functions["record_failure"].google_pubsub_topic_iam_member.dead_letter_publisher[0]
  to   = google_pubsub_topic_iam_member.dead_letter_publisher["transcription-failures"]
}

moved {
  from = module.functions["record_failure"].google_pubsub_subscription.dead_letter_sink[0]
  to   = google_pubsub_subscription.dead_letter_sink["transcription-failures"]
}

moved {
  from = module.functions["record_correction"].google_pubsub_topic.dead_letter[0]
  to   = google_pubsub_topic.dead_letter["transcription-corrections"]
}

moved {
  from = module.functions["record_correction"].google_pubsub_topic_iam_member.dead_letter_publisher[0]
  to   = google_pubsub_topic_iam_member.dead_letter_publisher["transcription-corrections"]
}

moved {
  from = module.functions["record_correction"].google_pubsub_subscription.dead_letter_sink[0]
  to   = google_pubsub_subscription.dead_letter_sink["transcription-corrections"]
}

moved {
  from = module.functions["ingest_import"].google_pubsub_topic.dead_letter[0]
  to   = google_pubsub_topic.dead_letter["bucket-events"]
}

moved {
  from = module.functions["ingest_import"].google_pubsub_topic_iam_member.dead_letter_publisher[0]
  to   = google_pubsub_topic_iam_member.dead_letter_publisher["bucket-events"]
}

moved {
  from = module.functions["ingest_import"].google_pubsub_subscription.dead_letter_sink[0]
  to   = google_pubsub_subscription.dead_letter_sink["bucket-events"]
}

moved {
  from = module.functions["record_metrics"].google_pubsub_topic.dead_letter[0]
  to   = google_pubsub_topic.dead_letter["training-metrics"]
}

moved {
  from = module.functions["record_metrics"].google_pubsub_topic_iam_member.dead_letter_publisher[0]
  to   = google_pubsub_topic_iam_member.dead_letter_publisher["training-metrics"]
}

moved {
  from = module.functions["record_metrics"].google_pubsub_subscription.dead_letter_sink[0]
  to   = google_pubsub_subscription.dead_letter_sink["training-metrics"]
}
