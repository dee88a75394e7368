// The MongoDB users of deploy/compose.yaml, made once by the mongo image on its first start
// (/docker-entrypoint-initdb.d, as the administrator): each service as itself with readWrite on its
// own database only, so no service can read or write another's (docs/operations.md, "Where the
// data lives"); and a backup user with the backup role only. Names and passwords come from the
// mongo container's environment, never from this file.
const admin = db.getSiblingDB("admin");
const services = {
  registration: "REGISTRATION",
  query: "QUERY",
  "deploy-tracker": "DEPLOY_TRACKER",
  audit: "AUDIT",
};
for (const [user, prefix] of Object.entries(services)) {
  const database = process.env[`${prefix}_MONGODB_DATABASE`];
  const pwd = process.env[`${prefix}_MONGODB_PASSWORD`];
  if (!database || !pwd) throw new Error(`set ${prefix}_MONGODB_DATABASE and ${prefix}_MONGODB_PASSWORD`);
  admin.createUser({ user, pwd, roles: [{ role: "readWrite", db: database }] });
}
admin.createUser({
  user: "registry-backup",
  pwd: process.env.BACKUP_MONGODB_PASSWORD,
  roles: [{ role: "backup", db: "admin" }],
});
