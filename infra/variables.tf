# project_id, bucket_name and topic_* to max_backoff_s and the four min_* quality thresholds are the Settings of shared/config.py, with the same
# defaults (tests/infra/test_parity.py checks it); local.settings in main.tf maps them by field name, and every
# function gets them as environment variables.

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
  description = "Location of the Firestore database (var.firestore_database), e.g. nam5 or eur3; null means var.region."
  type        = string
  default     = null
}

variable "firestore_database" {
  description = "The Firestore database the functions use (STT_FIRESTORE_DATABASE); \"(default)\" is the project's default one."
  type        = string
  default     = "(default)"
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

variable "audio_root" {
  description = "Where an event's audio_path without a scheme (audio/sample.wav) points: a gs:// prefix (STT_AUDIO_ROOT; empty means the deployment's own bucket)."
  type        = string
  default     = ""

  validation {
    condition     = var.audio_root == "" || can(regex("^gs://[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]/", var.audio_root))
    error_message = "audio_root is empty or a gs://bucket/ prefix."
  }
}

variable "audio_buckets" {
  description = "Buckets holding the audio the cases point at (gs://<bucket>/...): the functions that read audio (build_dataset; the api's augment_dataset) get roles/storage.objectViewer on each, nothing wider. audio_root's bucket is added."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for name in var.audio_buckets : can(regex("^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$", name))])
    error_message = "audio_buckets are bucket names (no gs:// and no path)."
  }
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

variable "min_completeness" {
  description = "Default quality threshold of a dataset build, check and validation: minimum completeness in [0, 1] (STT_MIN_COMPLETENESS; a build request's quality_thresholds overrides it)."
  type        = number
  default     = 0.95

  validation {
    condition     = var.min_completeness >= 0 && var.min_completeness <= 1
    error_message = "A quality threshold is a fraction in [0, 1]."
  }
}

variable "min_consistency" {
  description = "Default quality threshold of a dataset build, check and validation: minimum consistency in [0, 1] (STT_MIN_CONSISTENCY; a build request's quality_thresholds overrides it)."
  type        = number
  default     = 0.9

  validation {
    condition     = var.min_consistency >= 0 && var.min_consistency <= 1
    error_message = "A quality threshold is a fraction in [0, 1]."
  }
}

variable "min_validity" {
  description = "Default quality threshold of a dataset build, check and validation: minimum validity in [0, 1] (STT_MIN_VALIDITY; a build request's quality_thresholds overrides it)."
  type        = number
  default     = 0.95

  validation {
    condition     = var.min_validity >= 0 && var.min_validity <= 1
    error_message = "A quality threshold is a fraction in [0, 1]."
  }
}

variable "min_overall_score" {
  description = "Default quality threshold of a dataset build, check and validation: minimum overall score in [0, 1] (STT_MIN_OVERALL_SCORE; a build request's quality_thresholds overrides it)."
  type        = number
  default     = 0.9

  validation {
    condition     = var.min_overall_score >= 0 && var.min_overall_score <= 1
    error_message = "A quality threshold is a fraction in [0, 1]."
  }
}

variable "dead_letter_retention" {
  description = "How long a dead letter is kept, on its topic and its -sink subscription (max 31 days): long enough to fix its cause and replay it (api op replay_dead_letters)."
  type        = string
  default     = "2678400s"
}

variable "temporary_prefixes" {
  description = "Object prefixes of scratch data in the bucket, deleted after temporary_object_age_days: tmp/, and the export's staged segments (learning_data/appending/), which a run composes and deletes within minutes, so one a day old was left by a run that died."
  type        = list(string)
  default     = ["tmp/", "learning_data/appending/"]
}

variable "import_segment_age_days" {
  description = "Age in days after which an import's reject segments (import_segments/) are deleted: a finished import deletes its own, so these are a dead import's. Longer than dead_letter_retention, so an import replayed from its dead letter still finds the segments its checkpoint lists."
  type        = number
  default     = 32

  validation {
    condition     = var.import_segment_age_days >= 32
    error_message = "import_segment_age_days must outlast a dead letter (31 days at most), or a replayed import would find its checkpoint's segments gone."
  }
}

variable "quarantine_retention_days" {
  description = "Days a quarantined payload is kept: its Firestore record (TTL on expire_at, written by the functions) and its whole copy under quarantine/ (bucket lifecycle). 0 keeps them for ever."
  type        = number
  default     = 30
}

variable "alert_notification_channels" {
  description = "Cloud Monitoring notification channels (projects/P/notificationChannels/ID) every alert policy notifies; none: the incidents only show in the console."
  type        = list(string)
  default     = []
}

variable "function_error_threshold" {
  description = "Responses with a 5xx status (crashes, and transient errors Pub/Sub retries) of one function in 5 minutes above which an alert opens."
  type        = number
  default     = 5
}

variable "build_rejection_alert_threshold" {
  description = "Build requests refused or built with a failed quality check in one hour above which an alert opens (0: any one)."
  type        = number
  default     = 0
}

variable "quarantine_alert_threshold" {
  description = "Payloads quarantined (bad input kept with its reason) in one hour above which an alert opens."
  type        = number
  default     = 10
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

# ---------------------------------------------------------------- generated from shared/topology.py
# The variables below are set by topology.auto.tfvars.json, which `python -m stack.tfvars` (make tfvars) writes
# from shared/topology.py and pyproject.toml; tests/infra fails while the committed file is stale. They describe
# the code, not a deployment: change the Python and regenerate rather than setting them here.
# A topic is given as the name of the setting (the variable above) that names it, e.g. "topic_failures".

variable "functions" {
  description = "Generated (topology.auto.tfvars.json): the functions of shared/topology.py by name. push: the push subscription that triggers it (null for an HTTP function): its topic's setting, its ack deadline (null: var.ack_deadline_s) and its Pub/Sub filter (\"\": none)."
  type = map(object({
    entry_point = string
    signature   = string
    source      = string
    push = optional(object({
      topic          = string
      ack_deadline_s = optional(number)
      filter         = optional(string, "")
    }))
  }))
  nullable = false

  validation {
    condition     = alltrue([for fn in var.functions : contains(["cloudevent", "http"], fn.signature)])
    error_message = "A function's signature is cloudevent or http."
  }

  validation {
    condition     = alltrue([for fn in var.functions : fn.push == null || fn.signature == "cloudevent"])
    error_message = "Only a cloudevent function can be triggered by a push subscription."
  }
}

variable "topics" {
  description = "The topics the outside world publishes to, as the settings that name them."
  type        = list(string)
  nullable    = false
}

variable "bucket_notification" {
  description = "The datasets bucket's object notifications: the setting that names their topic, event types, payload format."
  type = object({
    topic          = string
    event_types    = list(string)
    payload_format = string
  })
  nullable = false
}

variable "settings_env" {
  description = "The environment variable of each setting (shared.config.ENV_NAMES): every function gets them all."
  type        = map(string)
  nullable    = false
}

variable "function_requirements" {
  description = "Lines of the requirements.txt of every function zip: [project].dependencies of pyproject.toml."
  type        = list(string)
  nullable    = false
}
