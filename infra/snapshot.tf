# The case snapshot past one machine: a BigQuery external table over the Parquet parts the functions write to
# learning_data/cases/ (docs/snapshot.md), so analysts query it and a build too large for one function runs
# as the same query in BigQuery (shared/snapshot/sql.py bigquery_build). Nothing is copied: BigQuery reads the
# parts where they are, so the table is as fresh as the snapshot.

variable "snapshot_dataset_id" {
  description = "BigQuery dataset that holds the case snapshot's external table."
  type        = string
  default     = "sttdata"
}

variable "snapshot_readers" {
  description = "Members who may query the case snapshot in BigQuery (e.g. group:data-science@example.com)."
  type        = list(string)
  default     = []
}

resource "google_bigquery_dataset" "snapshot" {
  # checkov:skip=CKV_GCP_81: Google-managed encryption at rest; CMEK is an organisation policy choice this module leaves out
  project       = var.project_id
  dataset_id    = var.snapshot_dataset_id
  location      = coalesce(var.bucket_location, var.region)
  description   = "The case snapshot of ${var.bucket_name} (learning_data/cases/*.parquet) as an external table."
  friendly_name = "sttdata case snapshot"
}

resource "google_bigquery_table" "cases" {
  # checkov:skip=CKV_GCP_80: an external table holds no data of its own; the parts are in the encrypted bucket
  project    = var.project_id
  dataset_id = google_bigquery_dataset.snapshot.dataset_id
  table_id   = "cases"
  # Kept on destroy like any table; it only points at the parts, so recreating it loses nothing either.
  deletion_protection = true
  description         = "Every case, a row per write: for a case_id the row with the latest updated_at wins."

  external_data_configuration {
    source_format = "PARQUET"
    autodetect    = true
    source_uris   = ["gs://${google_storage_bucket.data.name}/learning_data/cases/*.parquet"]
  }
}

resource "google_bigquery_dataset_iam_member" "snapshot_readers" {
  for_each   = toset(var.snapshot_readers)
  project    = var.project_id
  dataset_id = google_bigquery_dataset.snapshot.dataset_id
  role       = "roles/bigquery.dataViewer"
  member     = each.value
}
