# The names below are the Settings of shared/config.py; their defaults are the same
# (tests/infra/test_parity.py checks it). Every function gets them as environment variables.

variable "project_id" {
  description = "The project to deploy to (GOOGLE_CLOUD_PROJECT of the functions)."
  type        = string
}

variable "region" {
  description = "Region of the functions, the scheduler jobs and (unless bucket_location is set) the buckets."
  type        = string
  default     = "us-central1"
}

variable "bucket_name" {
  description = "The datasets bucket (STT_BUCKET). Bucket names are global: most projects will set this."
  type        = string
  default     = "stt-project-datasets"
}

variable "bucket_location" {
  description = "Location of the buckets; null means var.region."
  type        = string
  default     = null
}

variable "firestore_location" {
  description = "Location of the (default) Firestore database, e.g. nam5 or eur3; null means var.region."
  type        = string
  default     = null
}

variable "topic_failures" {
  description = "Failure events from the transcription service (STT_TOPIC_FAILURES)."
  type        = string
  default     = "transcription-failures"
}

variable "topic_corrections" {
  description = "Corrections to stored cases (STT_TOPIC_CORRECTIONS)."
  type        = string
  default     = "transcription-corrections"
}

variable "topic_metrics" {
  description = "Performance, model versions, learning progress, inference stats (STT_TOPIC_METRICS)."
  type        = string
  default     = "training-metrics"
}

variable "topic_bucket_events" {
  description = "The bucket's object notifications (STT_TOPIC_BUCKET_EVENTS)."
  type        = string
  default     = "bucket-events"
}

variable "collection_prefix" {
  description = "Prefix of every Firestore collection (STT_COLLECTION_PREFIX)."
  type        = string
  default     = ""
}

variable "max_delivery_attempts" {
  description = "Deliveries of a message before it goes to its dead-letter topic (STT_MAX_DELIVERY_ATTEMPTS, 5..100)."
  type        = number
  default     = 5

  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100
    error_message = "Pub/Sub accepts 5 to 100 delivery attempts."
  }
}

variable "ack_deadline_s" {
  description = "Ack deadline of the push subscriptions in seconds (STT_ACK_DEADLINE_S, 10..600)."
  type        = number
  default     = 60
}

variable "min_backoff_s" {
  description = "Minimum retry backoff of the push subscriptions in seconds (STT_MIN_BACKOFF_S)."
  type        = number
  default     = 1
}

variable "max_backoff_s" {
  description = "Maximum retry backoff of the push subscriptions in seconds (STT_MAX_BACKOFF_S, up to 600)."
  type        = number
  default     = 60
}

variable "dead_letter_retention" {
  description = "How long a dead letter is kept, on its topic and its -sink subscription (max 31 days)."
  type        = string
  default     = "604800s"
}

variable "temporary_prefixes" {
  description = "Object prefixes of scratch data in the bucket, deleted after temporary_object_age_days."
  type        = list(string)
  default     = ["tmp/"]
}

variable "temporary_object_age_days" {
  description = "Age in days after which objects under temporary_prefixes are deleted."
  type        = number
  default     = 1
}

variable "noncurrent_version_age_days" {
  description = "Days a replaced or deleted object version is kept before it is deleted."
  type        = number
  default     = 30
}

variable "function_runtime" {
  description = "Cloud Functions runtime of every function."
  type        = string
  default     = "python311"
}

variable "scheduler_time_zone" {
  description = "Time zone of the Cloud Scheduler jobs."
  type        = string
  default     = "Etc/UTC"
}

variable "labels" {
  description = "Labels put on every resource that takes labels."
  type        = map(string)
  default     = { app = "sttdata" }
}

variable "api_invokers" {
  description = "Members allowed to call the private api function, e.g. [\"group:stt-data-science@example.com\"]."
  type        = list(string)
  default     = []
}
