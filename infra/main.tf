locals {
  # The deployed functions, one entry per FunctionSpec of shared/topology.py
  # (tests/infra/test_parity.py fails when the two disagree). Adding a function is one entry.
  # Every attribute is optional:
  #   topic          the topic whose push subscription triggers it (omit for HTTP functions);
  #                  its push subscription carries the invoker's OIDC token and dead-letters into
  #                  <topic>-dead-letter (one per topic, shared by the functions on it, with a -sink pull subscription)
  #   object_prefix  for a function on var.topic_bucket_events: the object names it serves, e.g. "imports/";
  #                  its push subscription gets filter hasPrefix(attributes.objectId, "<prefix>") (default: no filter)
  #   schedule       cron of a Cloud Scheduler job that POSTs {} to it with the invoker's OIDC token
  #   invokers       members allowed to call it (e.g. ["group:data-science@example.com"]); never allUsers
  #   ingress        ALLOW_INTERNAL_ONLY (default: Pub/Sub push and Scheduler only) or ALLOW_ALL (still IAM-checked)
  #   bucket_role    its role on the datasets bucket, e.g. roles/storage.objectUser (default: none)
  #   publish_topics topics it may publish to (default: none)
  #   ack_deadline_s its push subscription's ack deadline (default: var.ack_deadline_s)
  #   memory, timeout_s, max_instances, env (extra environment variables)
  functions = {
    record_failure = {
      topic       = var.topic_failures
      bucket_role = "roles/storage.objectCreator" # keeps oversize rejected payloads whole under quarantine/
    }
    record_correction = {
      topic       = var.topic_corrections
      bucket_role = "roles/storage.objectCreator"
    }
    ingest_import = {
      topic          = var.topic_bucket_events
      object_prefix  = "imports/"
      bucket_role    = "roles/storage.objectUser" # reads imports/, writes import_results/ and quarantine/
      memory         = "1Gi"
      timeout_s      = 540
      ack_deadline_s = 600 # a 100k-line import runs about a minute; never redelivered while it runs
    }
    build_dataset = {
      topic          = var.topic_bucket_events
      object_prefix  = "dataset-requests/"
      bucket_role    = "roles/storage.objectUser" # reads dataset-requests/ and the cases' exports; writes finetuning_datasets/, dataset_results/, data_versions/version_registry.json
      memory         = "2Gi"
      timeout_s      = 540
      ack_deadline_s = 600 # Pub/Sub's longest: a build must not be redelivered while it runs
    }
    record_metrics = {
      topic       = var.topic_metrics
      bucket_role = "roles/storage.objectCreator" # keeps oversize rejected payloads whole under quarantine/
    }
    aggregate = {
      schedule    = "*/30 * * * *"
      bucket_role = "roles/storage.objectUser" # replaces the metadata/ and learning_data/ exports
      memory      = "1Gi"
      timeout_s   = 300
    }
    # Operators and data scientists call it with an identity token (gcloud functions call); never public.
    api = {
      ingress     = "ALLOW_ALL"
      invokers    = var.api_invokers
      bucket_role = "roles/storage.objectUser" # rollback_to_version rewrites the registry; reports may be saved
    }
  }

  topics = [var.topic_failures, var.topic_corrections, var.topic_metrics, var.topic_bucket_events]

  # The topics that push to functions: each gets one dead-letter topic, whatever the number of its subscriptions.
  pushed_topics = toset([for name, fn in local.functions : fn.topic if lookup(fn, "topic", null) != null])

  # The Settings of shared/config.py, under the names of shared.config.ENV_NAMES.
  function_env = {
    GOOGLE_CLOUD_PROJECT      = var.project_id
    STT_BUCKET                = var.bucket_name
    STT_TOPIC_FAILURES        = var.topic_failures
    STT_TOPIC_CORRECTIONS     = var.topic_corrections
    STT_TOPIC_METRICS         = var.topic_metrics
    STT_TOPIC_BUCKET_EVENTS   = var.topic_bucket_events
    STT_COLLECTION_PREFIX     = var.collection_prefix
    STT_MAX_DELIVERY_ATTEMPTS = tostring(var.max_delivery_attempts)
    STT_ACK_DEADLINE_S        = tostring(var.ack_deadline_s)
    STT_MIN_BACKOFF_S         = tostring(var.min_backoff_s)
    STT_MAX_BACKOFF_S         = tostring(var.max_backoff_s)
  }

  # requirements.txt of every function zip: the runtime dependencies of pyproject.toml (the parity test checks).
  function_requirements = [
    "functions-framework>=3.10,<4",
    "google-cloud-firestore>=2.34,<3",
    "google-cloud-pubsub>=2.44,<3",
    "google-cloud-storage>=3.17,<4",
    "pandas>=2.2",
    "pyarrow>=17",
    "jiwer>=4.0,<5",
    "pydantic>=2.7,<3",
    "tenacity>=9",
    "orjson>=3.9",
    "requests>=2.31",
    "matplotlib>=3.8",
    "text2num>=3.1,<4",
  ]

  # Firestore collections that have composite indexes (shared/ reads them through Settings.collection).
  collection_failed_cases = "${var.collection_prefix}failed_cases"
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
  topic   = google_pubsub_topic.topics[var.topic_bucket_events].name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${data.google_storage_project_service_account.gcs.email_address}"
}

resource "google_storage_notification" "bucket_events" {
  bucket         = google_storage_bucket.data.name
  topic          = google_pubsub_topic.topics[var.topic_bucket_events].id
  payload_format = "JSON_API_V1"
  event_types    = ["OBJECT_FINALIZE"]

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
  name                              = "(default)"
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

module "functions" {
  source   = "./modules/function"
  for_each = local.functions

  project_id   = var.project_id
  region       = var.region
  name         = each.key
  source_root  = abspath("${path.module}/..")
  requirements = local.function_requirements
  runtime      = var.function_runtime
  env          = merge(local.function_env, lookup(each.value, "env", {}))
  labels       = var.labels

  topic          = lookup(each.value, "topic", null) == null ? null : google_pubsub_topic.topics[each.value.topic].name
  object_prefix  = lookup(each.value, "object_prefix", null)
  schedule       = lookup(each.value, "schedule", null)
  invokers       = lookup(each.value, "invokers", null)
  ingress        = lookup(each.value, "ingress", null)
  bucket_role    = lookup(each.value, "bucket_role", null)
  publish_topics = lookup(each.value, "publish_topics", null)
  memory         = lookup(each.value, "memory", null)
  timeout_s      = lookup(each.value, "timeout_s", null)
  max_instances  = lookup(each.value, "max_instances", null)

  bucket             = google_storage_bucket.data.name
  source_bucket      = google_storage_bucket.sources.name
  firestore_database = google_firestore_database.main.name

  invoker_email         = google_service_account.invoker.email
  pubsub_agent          = local.pubsub_agent
  dead_letter_topic     = lookup(each.value, "topic", null) == null ? null : google_pubsub_topic.dead_letter[each.value.topic].id
  ack_deadline_s        = lookup(each.value, "ack_deadline_s", var.ack_deadline_s)
  min_backoff_s         = var.min_backoff_s
  max_backoff_s         = var.max_backoff_s
  max_delivery_attempts = var.max_delivery_attempts
  scheduler_time_zone   = var.scheduler_time_zone
}
