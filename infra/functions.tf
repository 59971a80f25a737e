# What Terraform adds to each function of var.functions (generated from shared/topology.py): its sizing,
# schedule, ingress, callers and roles. These are decisions about the cloud that the code and the local stack
# never read, so they live here, keyed by function name; a key that is not a function fails tests/infra.
# A function without an entry gets the module's defaults: 512Mi, 60 s, internal ingress, no bucket role.
# Every attribute is optional:
#   schedule       cron of a Cloud Scheduler job that POSTs {} to it with the invoker's OIDC token
#   invokers       members allowed to call it (e.g. ["group:data-science@example.com"]); never allUsers
#   ingress        ALLOW_INTERNAL_ONLY (default: Pub/Sub push and Scheduler only) or ALLOW_ALL (still IAM-checked)
#   bucket_role    its role on the datasets bucket, e.g. roles/storage.objectUser (default: none)
#   bucket_prefix_roles  roles that hold only under a prefix ("reports/") or on one object, by IAM condition
#   publish_topics topics it may publish to (default: none)
#   reads_audio    true: object reads on the audio buckets (local.audio_buckets: var.audio_buckets and audio_root's)
#   memory, cpu, timeout_s (at most its push subscription's ack deadline), max_instances, env (extra environment variables)
locals {
  function_cloud = {
    # The push functions write nothing to the bucket but an oversize rejected payload, kept whole once under
    # quarantine/: create-only there, by IAM condition, and nothing anywhere else.
    record_failure = {
      bucket_prefix_roles = { "quarantine/" = "roles/storage.objectCreator" }
    }
    record_correction = {
      bucket_prefix_roles = { "quarantine/" = "roles/storage.objectCreator" }
    }
    ingest_import = {
      bucket_role = "roles/storage.objectUser" # reads imports/, writes import_results/, quarantine/ and snapshot parts
      memory      = "1Gi"
      timeout_s   = 540 # within its 600 s ack deadline (shared/topology.py): never redelivered while it runs
    }
    build_dataset = {
      bucket_role = "roles/storage.objectUser" # reads dataset-requests/ and learning_data/cases/; writes the snapshot's tail, finetuning_datasets/, dataset_results/, data_versions/version_registry.json
      # A request with min/max_duration_s or augment reads the rows' clips (headers; train clips whole to augment).
      reads_audio = true
      memory      = "2Gi"
      # Two vCPUs: DuckDB's two threads, and augmentation's pool of clip threads (libsndfile, soxr and numpy
      # release the GIL). bench/augment.py's 1,000 clips of ~5 s keep at most 2 x workers clips in memory (a few
      # MB beside DuckDB's 1GB) and take well under the timeout on two cores.
      cpu       = "2"
      timeout_s = 540 # within its 600 s ack deadline (shared/topology.py): never redelivered while it runs
      # DuckDB's share of the 2Gi: the snapshot's parts sit in /tmp (memory too) beside it (docs/snapshot.md).
      env = { STT_SNAPSHOT_MEMORY_LIMIT = "1GB", STT_SNAPSHOT_THREADS = "2" }
    }
    record_metrics = {
      bucket_prefix_roles = { "quarantine/" = "roles/storage.objectCreator" }
    }
    aggregate = {
      schedule    = "*/30 * * * *"
      bucket_role = "roles/storage.objectUser" # replaces the metadata/ and learning_data/ exports, compacts learning_data/cases/
      memory      = "2Gi"                      # compacting the case snapshot runs DuckDB (STT_SNAPSHOT_MEMORY_LIMIT)
      timeout_s   = 300
    }
    # Operators and data scientists call it with an identity token (gcloud functions call); never public.
    api = {
      ingress  = "ALLOW_ALL"
      invokers = var.api_invokers
      # Reads everything (datasets, registry, exports); writes only where its ops write (shared/api.py), so no
      # call can replace a dataset, an upload that starts work or another function's output.
      bucket_role = "roles/storage.objectViewer"
      bucket_prefix_roles = {
        "reports/"                            = "roles/storage.objectUser"    # generate_comprehensive_report(output_path), saved again under the same name
        "restores/"                           = "roles/storage.objectUser"    # rollback_to_version(target_path): a restore replaces its target's files
        "data_versions/version_registry.json" = "roles/storage.objectUser"    # rollback replaces it under a generation precondition
        "dataset-requests/api-augment/"       = "roles/storage.objectCreator" # augment_dataset uploads its build request once; build_dataset writes the dataset
        "quarantine/"                         = "roles/storage.objectCreator" # store_failed_case, replay_dead_letters: oversize payloads kept once
      }
      # No reads_audio: its augment_dataset op only uploads a build request; build_dataset reads the clips.
      # replay_dead_letters republishes dead letters to the topics they came from (it pulls them: replay.tf).
      publish_topics = sort(local.pushed_topics)
    }
  }
}
