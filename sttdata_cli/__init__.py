"""`sttdata`: the command line for people who run the system (status, imports, builds, versions, pulls, reports).

It talks to the deployment the way any client does: the bucket through the storage client (uploads that start
work, verified downloads) and everything else through the `api` HTTP function. Locally it reads the variables
`make up` writes to `.local/stack.env`; in the cloud, Application Default Credentials and an identity token for
the private `api`.
"""
