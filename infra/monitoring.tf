# What failed, said before it expires: alert policies on the dead letters waiting, on functions answering
# errors, on the rate of quarantined payloads and on build requests rejected or failing quality, each notifying
# var.alert_notification_channels.
# README ("Delivery, retries, dead letters") says how to read what failed and replay it.

# Any dead letter waiting on a -sink subscription: it stays there for var.dead_letter_retention.
resource "google_monitoring_alert_policy" "dead_letter_backlog" {
  for_each              = local.pushed_topics
  project               = var.project_id
  display_name          = "sttdata: dead letters of ${each.key}"
  combiner              = "OR"
  notification_channels = var.alert_notification_channels
  user_labels           = var.labels

  conditions {
    display_name = "messages waiting on ${google_pubsub_subscription.dead_letter_sink[each.key].name}"
    condition_threshold {
      filter          = "resource.type = \"pubsub_subscription\" AND resource.labels.subscription_id = \"${google_pubsub_subscription.dead_letter_sink[each.key].name}\" AND metric.type = \"pubsub.googleapis.com/subscription/num_undelivered_messages\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MAX"
      }
      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Messages of ${each.key} failed every delivery attempt and wait on the dead-letter subscription ${google_pubsub_subscription.dead_letter_sink[each.key].name} (kept ${var.dead_letter_retention}). Read them with `gcloud pubsub subscriptions pull ${google_pubsub_subscription.dead_letter_sink[each.key].name}`, the failing function's logs say why; once the cause is fixed, replay them: `{\"op\": \"replay_dead_letters\", \"topic\": \"${each.key}\"}` to the api function."
  }

  alert_strategy {
    auto_close = "86400s"
  }
}

# A function answering 5xx: a crash, or a transient error that Pub/Sub retries until it dead-letters.
resource "google_monitoring_alert_policy" "function_errors" {
  for_each              = var.functions
  project               = var.project_id
  display_name          = "sttdata: errors of ${each.key}"
  combiner              = "OR"
  notification_channels = var.alert_notification_channels
  user_labels           = var.labels

  conditions {
    display_name = "5xx responses of ${module.functions[each.key].name}"
    condition_threshold {
      filter          = "resource.type = \"cloud_run_revision\" AND resource.labels.service_name = \"${module.functions[each.key].name}\" AND metric.type = \"run.googleapis.com/request_count\" AND metric.labels.response_code_class = \"5xx\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.function_error_threshold
      duration        = "0s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["resource.labels.service_name"]
      }
      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "The function ${each.key} answered more than ${var.function_error_threshold} errors in 5 minutes. Its logs (severity ERROR) name the error; a pushed message it keeps failing ends on its dead-letter subscription."
  }

  alert_strategy {
    auto_close = "86400s"
  }
}

# Every quarantined payload logs one line `quarantined` (shared/push.py logs each outcome's status).
resource "google_logging_metric" "quarantined" {
  project = var.project_id
  name    = "sttdata_quarantined"
  filter  = "resource.type = \"cloud_run_revision\" AND jsonPayload.message = \"quarantined\""

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "sttdata quarantined payloads"
  }
}

resource "google_monitoring_alert_policy" "quarantine_rate" {
  project               = var.project_id
  display_name          = "sttdata: payloads quarantined"
  combiner              = "OR"
  notification_channels = var.alert_notification_channels
  user_labels           = var.labels

  conditions {
    display_name = "more than ${var.quarantine_alert_threshold} quarantined in an hour"
    condition_threshold {
      filter          = "resource.type = \"cloud_run_revision\" AND metric.type = \"logging.googleapis.com/user/${google_logging_metric.quarantined.name}\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.quarantine_alert_threshold
      duration        = "0s"
      aggregations {
        alignment_period     = "3600s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
      }
      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Producers are sending payloads the functions refuse. `{\"op\": \"get_system_statistics\"}` counts them; the quarantine collection keeps each with its reason for ${var.quarantine_retention_days} days (0: for ever)."
  }

  alert_strategy {
    auto_close = "86400s"
  }
}

# A build request that came to nothing usable: refused (bad or oversize request: outcome `rejected`, kept in the
# quarantine with its reason) or built with a failed quality check (outcome `built` with quality_passed false;
# not registered as a version unless the request allowed it). build_dataset logs one outcome line per build
# (shared/services/dataset_builds.py _LOGGED); a redelivered build logs `already ...`, so each counts once.
resource "google_logging_metric" "builds_rejected" {
  project = var.project_id
  name    = "sttdata_builds_rejected"
  filter  = "resource.type = \"cloud_run_revision\" AND resource.labels.service_name = \"${module.functions["build_dataset"].name}\" AND (jsonPayload.message = \"rejected\" OR (jsonPayload.message = \"built\" AND jsonPayload.quality_passed = false))"

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "sttdata build requests rejected or failing their quality check"
    labels {
      key         = "outcome"
      value_type  = "STRING"
      description = "rejected (the request was refused) or built (the dataset failed its quality check)"
    }
  }

  label_extractors = {
    outcome = "EXTRACT(jsonPayload.message)"
  }
}

resource "google_monitoring_alert_policy" "builds_rejected" {
  project               = var.project_id
  display_name          = "sttdata: build requests rejected or failing quality"
  combiner              = "OR"
  notification_channels = var.alert_notification_channels
  user_labels           = var.labels

  conditions {
    display_name = "more than ${var.build_rejection_alert_threshold} builds rejected or failing quality in an hour"
    condition_threshold {
      filter          = "resource.type = \"cloud_run_revision\" AND metric.type = \"logging.googleapis.com/user/${google_logging_metric.builds_rejected.name}\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.build_rejection_alert_threshold
      duration        = "0s"
      aggregations {
        alignment_period     = "3600s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
      }
      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "A dataset build request was refused or its dataset failed the quality check. `dataset_results/<request name>.json` holds the result: `reason` for a refused request (also kept in the quarantine collection), `quality_gate` (reasons, thresholds) for a failed check; `{\"op\": \"build_status\", \"name\": \"<request name>\"}` and `{\"op\": \"recent_work\"}` on the api show the same. Fix the request (or set `allow_failed_quality`, or the thresholds) and upload it again: each upload is a new build."
  }

  alert_strategy {
    auto_close = "86400s"
  }
}
