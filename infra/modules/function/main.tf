locals {
  function_id = replace(var.name, "_", "-")
  pushed      = var.topic != null
  scheduled   = var.schedule != null
  # Who may call the function, under keys known at plan time: the invoker service account when
  # something pushes or schedules it, and the members of var.invokers.
  invokers = merge(
    local.pushed || local.scheduled ? { invoker = "serviceAccount:${var.invoker_email}" } : {},
    { for member in var.invokers : member => member },
  )
  # shared/ as the Python package of the zip, without caches.
  shared_files = [for f in fileset("${var.source_root}/shared", "**/*.py") : f if !strcontains(f, "__pycache__")]
}

# ---------------------------------------------------------------- runtime identity and its roles

resource "google_service_account" "runtime" {
  project      = var.project_id
  account_id   = "fn-${local.function_id}"
  display_name = "sttdata function ${var.name} (runtime)"
}

# Firestore has no per-collection IAM; the condition keeps the role to this database.
resource "google_project_iam_member" "firestore" {
  project = var.project_id
  role    = "roles/datastore.user"
  member  = "serviceAccount:${google_service_account.runtime.email}"

  condition {
    title      = "only-${var.firestore_database}"
    expression = "resource.name == \"projects/${var.project_id}/databases/${var.firestore_database}\""
  }
}

resource "google_storage_bucket_iam_member" "bucket" {
  count  = var.bucket_role == null ? 0 : 1
  bucket = var.bucket
  role   = var.bucket_role
  member = "serviceAccount:${google_service_account.runtime.email}"
}

# Writes limited by IAM condition to the objects made for this function: a prefix ("reports/") or one object name.
# Object names in conditions are projects/_/buckets/<bucket>/objects/<name>. Listing is a bucket-level permission
# a condition on object names never grants: it comes with bucket_role.
resource "google_storage_bucket_iam_member" "bucket_prefix" {
  for_each = var.bucket_prefix_roles
  bucket   = var.bucket
  role     = each.value
  member   = "serviceAccount:${google_service_account.runtime.email}"

  condition {
    title       = substr("${var.name} ${trimprefix(each.value, "roles/storage.")} ${each.key}", 0, 100)
    description = "${var.name} may ${each.value == "roles/storage.objectUser" ? "create, replace and delete" : "create (never replace)"} ${endswith(each.key, "/") ? "objects under" : "the object"} ${each.key}"
    expression  = endswith(each.key, "/") ? "resource.name.startsWith(\"projects/_/buckets/${var.bucket}/objects/${each.key}\")" : "resource.name == \"projects/_/buckets/${var.bucket}/objects/${each.key}\""
  }
}

resource "google_pubsub_topic_iam_member" "publish" {
  for_each = toset(var.publish_topics)
  project  = var.project_id
  topic    = each.key
  role     = "roles/pubsub.publisher"
  member   = "serviceAccount:${google_service_account.runtime.email}"
}

# ---------------------------------------------------------------- code

data "archive_file" "source" {
  type             = "zip"
  output_path      = "${path.root}/.build/${var.name}.zip"
  output_file_mode = "0644"

  source {
    content  = file("${var.source_root}/${var.main_py}")
    filename = "main.py"
  }

  source {
    content  = "${join("\n", var.requirements)}\n"
    filename = "requirements.txt"
  }

  dynamic "source" {
    for_each = toset(local.shared_files)
    content {
      content  = file("${var.source_root}/shared/${source.value}")
      filename = "shared/${source.value}"
    }
  }
}

# The object name carries the zip's hash, so a change to the code is a new object and a new deployment.
resource "google_storage_bucket_object" "source" {
  bucket = var.source_bucket
  name   = "${var.name}/${data.archive_file.source.output_md5}.zip"
  source = data.archive_file.source.output_path
}

resource "google_cloudfunctions2_function" "this" {
  # checkov:skip=CKV_GCP_124: ingress is per function (default internal only); ALLOW_ALL is for the api, which still needs run.invoker
  project     = var.project_id
  location    = var.region
  name        = local.function_id
  description = "sttdata ${var.name}"
  labels      = var.labels

  build_config {
    runtime     = var.runtime
    entry_point = var.entry_point

    source {
      storage_source {
        bucket = var.source_bucket
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    available_memory               = var.memory
    available_cpu                  = var.cpu
    timeout_seconds                = var.timeout_s
    max_instance_count             = var.max_instances
    ingress_settings               = var.ingress
    all_traffic_on_latest_revision = true
    service_account_email          = google_service_account.runtime.email
    environment_variables          = var.env
  }
}

# A gen2 function is a Cloud Run service: invoking it takes run.invoker on that service.
resource "google_cloud_run_v2_service_iam_member" "invoker" {
  for_each = local.invokers
  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.this.service_config[0].service
  role     = "roles/run.invoker"
  member   = each.value
}

# ---------------------------------------------------------------- push delivery

resource "google_pubsub_subscription" "push" {
  count                = local.pushed ? 1 : 0
  project              = var.project_id
  name                 = "${var.topic}-${local.function_id}"
  topic                = var.topic
  ack_deadline_seconds = var.ack_deadline_s
  labels               = var.labels
  # Only the messages it serves, e.g. the notifications of its objects (a filter is fixed at creation: changing it replaces the subscription).
  filter = var.filter == "" ? null : var.filter

  push_config {
    push_endpoint = google_cloudfunctions2_function.this.service_config[0].uri

    oidc_token {
      service_account_email = var.invoker_email
      audience              = google_cloudfunctions2_function.this.service_config[0].uri
    }
  }

  retry_policy {
    minimum_backoff = "${var.min_backoff_s}s"
    maximum_backoff = "${var.max_backoff_s}s"
  }

  dead_letter_policy {
    dead_letter_topic     = var.dead_letter_topic
    max_delivery_attempts = var.max_delivery_attempts
  }

  expiration_policy {
    ttl = ""
  }

  lifecycle {
    precondition {
      condition     = var.dead_letter_topic != null
      error_message = "A pushed function needs dead_letter_topic (the root module creates one per topic)."
    }
  }

  depends_on = [google_cloud_run_v2_service_iam_member.invoker]
}

# Pub/Sub acknowledges the forwarded messages on the source subscription as its service agent.
resource "google_pubsub_subscription_iam_member" "push_subscriber" {
  count        = local.pushed ? 1 : 0
  project      = var.project_id
  subscription = google_pubsub_subscription.push[0].name
  role         = "roles/pubsub.subscriber"
  member       = var.pubsub_agent
}

# ---------------------------------------------------------------- schedule

resource "google_cloud_scheduler_job" "this" {
  count            = local.scheduled ? 1 : 0
  project          = var.project_id
  region           = var.region
  name             = "${local.function_id}-schedule"
  description      = "Calls ${var.name} on a schedule"
  schedule         = var.schedule
  time_zone        = var.scheduler_time_zone
  attempt_deadline = "${var.timeout_s}s"

  retry_config {
    retry_count = 3
  }

  http_target {
    http_method = "POST"
    uri         = google_cloudfunctions2_function.this.service_config[0].uri
    body        = base64encode("{}")
    headers = {
      "Content-Type" = "application/json"
    }

    oidc_token {
      service_account_email = var.invoker_email
      audience              = google_cloudfunctions2_function.this.service_config[0].uri
    }
  }

  depends_on = [google_cloud_run_v2_service_iam_member.invoker]
}
