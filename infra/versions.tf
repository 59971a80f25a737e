terraform {
  required_version = ">= 1.5"

  # State lives in a GCS bucket given at init time:
  #   terraform init -backend-config="bucket=<state bucket>" -backend-config="prefix=sttdata"
  backend "gcs" {}

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.0, < 7.0"
    }
    archive = {
      source  = "hashicorp/archive"
      version = ">= 2.4, < 3.0"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
}
