variable "project_id" {
  description = "The project of the function."
  type        = string
}

variable "region" {
  description = "Region of the function and its scheduler job."
  type        = string
}

variable "name" {
  description = "The function's name in shared/topology.py; the deployed id uses '-' for '_'."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{2,40}$", var.name))
    error_message = "A function name is a lower-case Python identifier of 3 to 41 characters."
  }
}

variable "entry_point" {
  description = "The Python function that serves it, in its main.py."
  type        = string
}

variable "main_py" {
  description = "Its main.py, relative to source_root (e.g. functions/<name>/main.py): main.py of the zip."
  type        = string
}

variable "source_root" {
  description = "The repository root: the zip takes main_py and shared/ from here."
  type        = string
}

variable "requirements" {
  description = "Lines of the zip's requirements.txt."
  type        = list(string)
}

variable "runtime" {
  description = "Cloud Functions runtime."
  type        = string
  default     = "python311"
  nullable    = false
}

variable "env" {
  description = "Environment variables of the function."
  type        = map(string)
  default     = {}
  nullable    = false
}

variable "labels" {
  description = "Labels of the function and its topics and subscriptions."
  type        = map(string)
  default     = {}
  nullable    = false
}

variable "topic" {
  description = "The topic whose push subscription triggers the function; null for an HTTP function."
  type        = string
  default     = null
}

variable "filter" {
  description = "Pub/Sub filter of its push subscription, e.g. hasPrefix(attributes.objectId, \"imports/\") for a function on the bucket's notifications; \"\" for none."
  type        = string
  default     = ""
  nullable    = false
}

variable "dead_letter_topic" {
  description = "Id of the dead-letter topic of its push subscription (created by the root module, one per topic); required with topic."
  type        = string
  default     = null
}

variable "schedule" {
  description = "Cron of a Cloud Scheduler job that POSTs {} to the function; null for none."
  type        = string
  default     = null
}

variable "invokers" {
  description = "Members, besides the invoker service account, allowed to call the function."
  type        = list(string)
  default     = []
  nullable    = false

  validation {
    condition     = length(setintersection(var.invokers, ["allUsers", "allAuthenticatedUsers"])) == 0
    error_message = "Functions are private: allUsers and allAuthenticatedUsers are not allowed."
  }
}

variable "ingress" {
  description = "ALLOW_INTERNAL_ONLY (Pub/Sub push and Scheduler of this project) or ALLOW_ALL (still IAM-checked)."
  type        = string
  default     = "ALLOW_INTERNAL_ONLY"
  nullable    = false

  validation {
    condition     = contains(["ALLOW_INTERNAL_ONLY", "ALLOW_ALL"], var.ingress)
    error_message = "ingress is ALLOW_INTERNAL_ONLY or ALLOW_ALL."
  }
}

variable "bucket" {
  description = "The datasets bucket."
  type        = string
}

variable "bucket_role" {
  description = "The function's role on the datasets bucket, e.g. roles/storage.objectViewer or roles/storage.objectUser; null for none."
  type        = string
  default     = null

  validation {
    condition     = var.bucket_role == null || contains(["roles/storage.objectViewer", "roles/storage.objectCreator", "roles/storage.objectUser"], coalesce(var.bucket_role, "-"))
    error_message = "bucket_role is an object-level role: objectViewer, objectCreator or objectUser."
  }
}

variable "bucket_prefix_roles" {
  description = "Roles on the datasets bucket that hold only for object names under a prefix (a name ending with \"/\") or for one object (any other name), by IAM condition: e.g. { \"reports/\" = \"roles/storage.objectUser\" }. objectCreator creates objects but never replaces one (that needs storage.objects.delete); objectUser also replaces and deletes."
  type        = map(string)
  default     = {}
  nullable    = false

  validation {
    condition     = alltrue([for role in values(var.bucket_prefix_roles) : contains(["roles/storage.objectCreator", "roles/storage.objectUser"], role)])
    error_message = "bucket_prefix_roles grants objectCreator or objectUser (reads come from bucket_role)."
  }

  validation {
    condition     = alltrue([for prefix in keys(var.bucket_prefix_roles) : length(prefix) > 1 && !startswith(prefix, "/") && !strcontains(prefix, "*")])
    error_message = "bucket_prefix_roles keys are object names or prefixes (no leading \"/\", no wildcard, never the whole bucket)."
  }
}

variable "publish_topics" {
  description = "Topics the function may publish to."
  type        = list(string)
  default     = []
  nullable    = false
}

variable "source_bucket" {
  description = "Bucket that holds the source zips."
  type        = string
}

variable "firestore_database" {
  description = "The Firestore database the function reads and writes."
  type        = string
}

variable "memory" {
  description = "Memory of an instance."
  type        = string
  default     = "512Mi"
  nullable    = false
}

variable "cpu" {
  description = "vCPUs of an instance (null: what the memory gets by default, 1 below 4Gi)."
  type        = string
  default     = null
}

variable "timeout_s" {
  description = "Request timeout in seconds."
  type        = number
  default     = 60
  nullable    = false
}

variable "max_instances" {
  description = "Upper bound of instances."
  type        = number
  default     = 20
  nullable    = false
}

variable "invoker_email" {
  description = "The service account whose OIDC tokens the push subscription and the scheduler job carry."
  type        = string
}

variable "pubsub_agent" {
  description = "IAM member of the project's Pub/Sub service agent."
  type        = string
}

variable "ack_deadline_s" {
  description = "Ack deadline of the push subscription."
  type        = number
}

variable "min_backoff_s" {
  description = "Minimum retry backoff in seconds."
  type        = number
}

variable "max_backoff_s" {
  description = "Maximum retry backoff in seconds."
  type        = number
}

variable "max_delivery_attempts" {
  description = "Deliveries before a message is dead-lettered."
  type        = number
}

variable "scheduler_time_zone" {
  description = "Time zone of the scheduler job."
  type        = string
  default     = "Etc/UTC"
  nullable    = false
}
