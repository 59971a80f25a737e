locals {
  # The Settings of shared/config.py by field name, as this deployment sets them (variables.tf). The generated
  # inputs (topology.auto.tfvars.json, see variables.tf) name a topic by its setting: `-var topic_failures=...`
  # renames it for its subscriptions, dead-letter topic and the functions' environment alike.
  settings = {
    project               = var.project_id
    bucket                = var.bucket_name
    topic_failures        = var.topic_failures
    topic_corrections     = var.topic_corrections
    topic_metrics         = var.topic_metrics
    topic_bucket_events   = var.topic_bucket_events
    firestore_database    = var.firestore_database
    collection_prefix     = var.collection_prefix
    audio_root            = var.audio_root
    max_delivery_attempts = var.max_delivery_attempts
    ack_deadline_s        = var.ack_deadline_s
    min_backoff_s         = var.min_backoff_s
    max_backoff_s         = var.max_backoff_s
    min_completeness      = var.min_completeness
    min_consistency       = var.min_consistency
    min_validity          = var.min_validity
    min_overall_score     = var.min_overall_score

    quarantine_retention_days = var.quarantine_retention_days
  }

  topics = [for setting in var.topics : local.settings[setting]]

  # The topic that pushes to each push-triggered function.
  trigger_topics = { for name, fn in var.functions : name => local.settings[fn.push.topic] if fn.push != null }

  # The topics that push to functions: each gets one dead-letter topic, whatever the number of its subscriptions.
  pushed_topics = toset(values(local.trigger_topics))

  notification_topic = local.settings[var.bucket_notification.topic]

  # Every setting, under its environment variable (shared.config.ENV_NAMES), for every function.
  function_env = { for setting, env_name in var.settings_env : env_name => tostring(local.settings[setting]) }

  # Firestore collections that have composite indexes (shared/ reads them through Settings.collection).
  collection_failed_cases = "${var.collection_prefix}failed_cases"
  collection_quarantine   = "${var.collection_prefix}quarantine"
  collection_performance  = "${var.collection_prefix}performance_history"

  bucket_location = coalesce(var.bucket_location, var.region)
  pubsub_agent    = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

data "google_project" "this" {
  project_id = var.project_id
}

data "google_storage_project_service_account" "gcs" {
  project = var.project_id
}

# ---------------------------------------------------------------- storage

resource "google_storage_bucket" "data" {
  # checkov:skip=CKV_GCP_62: access is recorded by the Data Access audit logs (google_project_iam_audit_config.storage), not legacy usage logs
  name                        = var.bucket_name
  project                     = var.project_id
  location                    = local.bucket_location
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false
  labels                      = var.labels

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      age            = var.temporary_object_age_days
      matches_prefix = var.temporary_prefixes
    }
    action {
      type = "Delete"
    }
  }

  # An import's reject segments (import_segments/): the import deletes them once its result is recorded; one that
  # died for good leaves them. Kept longer than a dead letter, so a replayed import still joins what its
  # checkpoint lists.
  lifecycle_rule {
    condition {
      age            = var.import_segment_age_days
      matches_prefix = ["import_segments/"]
    }
    action {
      type = "Delete"
    }
  }

  # The whole copies of oversize quarantined payloads, as long as their Firestore records (TTL on expire_at).
  dynamic "lifecycle_rule" {
    for_each = var.quarantine_retention_days > 0 ? [var.quarantine_retention_days] : []
    content {
      condition {
        age            = lifecycle_rule.value
        matches_prefix = ["quarantine/"]
      }
      action {
        type = "Delete"
      }
    }
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.noncurrent_version_age_days
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      age = 1
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }
}

# The functions' source zips: kept apart so that uploading them raises no bucket event.
resource "google_storage_bucket" "sources" {
  # checkov:skip=CKV_GCP_62: access is recorded by the Data Access audit logs (google_project_iam_audit_config.storage), not legacy usage logs
  name                        = "${var.project_id}-sttdata-sources"
  project                     = var.project_id
  location                    = local.bucket_location
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true
  labels                      = var.labels

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.noncurrent_version_age_days
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }
}

resource "google_project_iam_audit_config" "storage" {
  project = var.project_id
  service = "storage.googleapis.com"

  audit_log_config {
    log_type = "DATA_READ"
  }
  audit_log_config {
    log_type = "DATA_WRITE"
  }
}

# ---------------------------------------------------------------- Pub/Sub

resource "google_pubsub_topic" "topics" {
  # checkov:skip=CKV_GCP_83: Google-managed encryption at rest; CMEK (kms_key_name) is an organisation policy choice this module leaves out
  for_each = toset(local.topics)
  name     = each.key
  project  = var.project_id
  labels   = var.labels
}

resource "google_pubsub_topic_iam_member" "gcs_publishes_bucket_events" {
  project = var.project_id
  topic   = google_pubsub_topic.topics[local.notification_topic].name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${data.google_storage_project_service_account.gcs.email_address}"
}

resource "google_storage_notification" "bucket_events" {
  bucket         = google_storage_bucket.data.name
  topic          = google_pubsub_topic.topics[local.notification_topic].id
  payload_format = var.bucket_notification.payload_format
  event_types    = var.bucket_notification.event_types

  depends_on = [google_pubsub_topic_iam_member.gcs_publishes_bucket_events]
}

# One dead-letter topic per pushed topic (`<topic>-dead-letter`, as Settings.dead_letter_topic names it):
# the push subscriptions of every function on that topic dead-letter into it.
resource "google_pubsub_topic" "dead_letter" {
  # checkov:skip=CKV_GCP_83: Google-managed encryption at rest; CMEK (kms_key_name) is an organisation policy choice this module leaves out
  for_each                   = local.pushed_topics
  project                    = var.project_id
  name                       = "${each.key}-dead-letter"
  message_retention_duration = var.dead_letter_retention
  labels                     = var.labels
}

# Pub/Sub forwards undeliverable messages as its service agent.
resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  for_each = local.pushed_topics
  project  = var.project_id
  topic    = google_pubsub_topic.dead_letter[each.key].name
  role     = "roles/pubsub.publisher"
  member   = local.pubsub_agent
}

# Keeps the dead letters until someone pulls them (a topic without a subscription drops its messages).
resource "google_pubsub_subscription" "dead_letter_sink" {
  for_each                   = local.pushed_topics
  project                    = var.project_id
  name                       = "${google_pubsub_topic.dead_letter[each.key].name}-sink"
  topic                      = google_pubsub_topic.dead_letter[each.key].id
  message_retention_duration = var.dead_letter_retention
  ack_deadline_seconds       = 60
  labels                     = var.labels

  expiration_policy {
    ttl = ""
  }
}

# ---------------------------------------------------------------- Firestore

resource "google_firestore_database" "main" {
  project                           = var.project_id
  name                              = var.firestore_database
  location_id                       = coalesce(var.firestore_location, var.region)
  type                              = "FIRESTORE_NATIVE"
  point_in_time_recovery_enablement = "POINT_IN_TIME_RECOVERY_ENABLED"
  delete_protection_state           = "DELETE_PROTECTION_ENABLED"
  deletion_policy                   = "ABANDON"
}

# The composite indexes the queries need: name -> collection and ordered fields (field = order, or
# "CONTAINS" for array-contains).
locals {
  firestore_indexes = {
    # DataManager.get_failed_cases_by_error_type: error_types array-contains X, newest first.
    failed_cases_by_error_type = {
      collection = local.collection_failed_cases
      fields     = [["error_types", "CONTAINS"], ["created_at", "DESCENDING"]]
    }
    # Failed cases of one model version, newest first.
    failed_cases_by_model_version = {
      collection = local.collection_failed_cases
      fields     = [["model_version", "ASCENDING"], ["created_at", "DESCENDING"]]
    }
    # DataManager.get_corrected_cases: corrected cases, newest first.
    failed_cases_corrected = {
      collection = local.collection_failed_cases
      fields     = [["corrected", "ASCENDING"], ["created_at", "DESCENDING"]]
    }
    # Performance trend of one model version, oldest first.
    performance_by_model_version = {
      collection = local.collection_performance
      fields     = [["model_version", "ASCENDING"], ["recorded_at", "ASCENDING"]]
    }
  }
}

resource "google_firestore_index" "this" {
  for_each   = local.firestore_indexes
  project    = var.project_id
  database   = google_firestore_database.main.name
  collection = each.value.collection

  dynamic "fields" {
    for_each = each.value.fields
    content {
      field_path   = fields.value[0]
      order        = fields.value[1] == "CONTAINS" ? null : fields.value[1]
      array_config = fields.value[1] == "CONTAINS" ? "CONTAINS" : null
    }
  }
}

# Fields no query reads, exempt from single-field indexing: a transcript or a history is kept, not searched, and
# every indexed value costs an index entry (a document has at most 40,000) and write time. The correction history
# moved out of a case (shared/adapters/firestore_cases.py) is the collection group correction_history.
locals {
  unindexed_fields = {
    case_corrections          = { collection = local.collection_failed_cases, field = "corrections" }
    case_original_transcript  = { collection = local.collection_failed_cases, field = "original_transcript" }
    case_corrected_transcript = { collection = local.collection_failed_cases, field = "corrected_transcript" }
    case_metadata             = { collection = local.collection_failed_cases, field = "metadata" }
    history_previous          = { collection = "correction_history", field = "previous_transcript" }
    history_corrected         = { collection = "correction_history", field = "corrected_transcript" }
    quarantine_raw            = { collection = local.collection_quarantine, field = "raw" }
  }
}

resource "google_firestore_field" "unindexed" {
  for_each   = local.unindexed_fields
  project    = var.project_id
  database   = google_firestore_database.main.name
  collection = each.value.collection
  field      = each.value.field

  index_config {}
}

# Quarantine records expire at expire_at (quarantine_retention_days after they were kept; none when it is 0).
resource "google_firestore_field" "quarantine_ttl" {
  project    = var.project_id
  database   = google_firestore_database.main.name
  collection = local.collection_quarantine
  field      = "expire_at"

  ttl_config {}
}

# ---------------------------------------------------------------- identities

# The one identity that may invoke the functions: Pub/Sub push and Cloud Scheduler sign their OIDC tokens as it.
resource "google_service_account" "invoker" {
  project      = var.project_id
  account_id   = "sttdata-invoker"
  display_name = "sttdata: push subscriptions and scheduler jobs invoke the functions as this"
}

# Pub/Sub mints the push OIDC tokens of the invoker (needed explicitly in projects made before April 2021).
resource "google_service_account_iam_member" "pubsub_mints_invoker_tokens" {
  service_account_id = google_service_account.invoker.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_agent
}

# ---------------------------------------------------------------- functions

# One instance per function of shared/topology.py (var.functions), with the cloud-side settings of functions.tf.
module "functions" {
  source   = "./modules/function"
  for_each = var.functions

  project_id   = var.project_id
  region       = var.region
  name         = each.key
  entry_point  = each.value.entry_point
  main_py      = each.value.source
  source_root  = abspath("${path.module}/..")
  requirements = var.function_requirements
  runtime      = var.function_runtime
  env          = merge(local.function_env, try(local.function_cloud[each.key].env, {}))
  labels       = var.labels

  topic             = each.value.push == null ? null : google_pubsub_topic.topics[local.trigger_topics[each.key]].name
  filter            = each.value.push == null ? "" : each.value.push.filter
  dead_letter_topic = each.value.push == null ? null : google_pubsub_topic.dead_letter[local.trigger_topics[each.key]].id
  ack_deadline_s    = each.value.push == null ? var.ack_deadline_s : coalesce(each.value.push.ack_deadline_s, var.ack_deadline_s)

  schedule            = try(local.function_cloud[each.key].schedule, null)
  invokers            = try(local.function_cloud[each.key].invokers, null)
  ingress             = try(local.function_cloud[each.key].ingress, null)
  bucket_role         = try(local.function_cloud[each.key].bucket_role, null)
  bucket_prefix_roles = try(local.function_cloud[each.key].bucket_prefix_roles, null)
  publish_topics      = try(local.function_cloud[each.key].publish_topics, null)
  memory              = try(local.function_cloud[each.key].memory, null)
  cpu                 = try(local.function_cloud[each.key].cpu, null)
  timeout_s           = try(local.function_cloud[each.key].timeout_s, null)
  max_instances       = try(local.function_cloud[each.key].max_instances, null)

  bucket             = google_storage_bucket.data.name
  source_bucket      = google_storage_bucket.sources.name
  firestore_database = google_firestore_database.main.name

  invoker_email         = google_service_account.invoker.email
  pubsub_agent          = local.pubsub_agent
  min_backoff_s         = var.min_backoff_s
  max_backoff_s         = var.max_backoff_s
  max_delivery_attempts = var.max_delivery_attempts
  scheduler_time_zone   = var.scheduler_time_zone
}

# ---------------------------------------------------------------- audio

locals {
  # The audio buckets the rows point into: var.audio_buckets and the bucket of audio_root (when it is not the
  # deployment's own bucket, which the functions reach through bucket_role already).
  audio_root_bucket = var.audio_root == "" ? "" : split("/", trimprefix(var.audio_root, "gs://"))[0]
  audio_buckets     = sort(distinct(compact(concat(var.audio_buckets, [local.audio_root_bucket]))))
  audio_readers     = sort([for name, cloud in local.function_cloud : name if try(cloud.reads_audio, false)])
  audio_grants = {
    for pair in setproduct(local.audio_readers, local.audio_buckets) : "${pair[0]}/${pair[1]}" => {
      function = pair[0]
      bucket   = pair[1]
    } if pair[1] != google_storage_bucket.data.name
  }
}

# Read only, object level, on those buckets only: a function that augments or measures clips reads them and
# writes what it makes under the datasets bucket (its bucket_role), never into an audio bucket.
resource "google_storage_bucket_iam_member" "audio_reader" {
  for_each = local.audio_grants
  bucket   = each.value.bucket
  role     = "roles/storage.objectViewer"
  member   = "serviceAccount:${module.functions[each.value.function].service_account_email}"
}
