// Açık Kapı — initiates the MongoDB replica set rs0 and the services' account.
//
// Run by the one-shot `mongo-init` service of deploy/compose.yaml with
// `mongosh --nodb --quiet /opt/acikkapi/replica-set.js`. Idempotent: an
// initiated set is left as it is, and the account is created, or has its
// password set again (how MONGO_APP_PASSWORD is rotated). Credentials come
// from the environment only, never from the command line (visible in `ps`).

const SET = "rs0";
const MEMBERS = ["mongo-1:27017", "mongo-2:27017", "mongo-3:27017"];
const env = process.env;

function open(uri) {
  const db = connect(uri);
  db.getSiblingDB("admin").auth(env.MONGO_ROOT_USER, env.MONGO_ROOT_PASSWORD);
  return db.getSiblingDB("admin");
}

// mongo-1 holds the root account the image created on its first start; the
// other two members must be empty to join, so the set is initiated from it.
const first = open(`mongodb://${MEMBERS[0]}/admin?directConnection=true`);
let initiated = true;
try {
  first.runCommand({ replSetGetStatus: 1 }).ok || (initiated = false);
} catch (e) {
  if (e.codeName !== "NotYetInitialized") throw e;
  initiated = false;
}
if (!initiated) {
  const members = MEMBERS.map((host, i) => ({ _id: i, host, priority: i === 0 ? 2 : 1 }));
  first.runCommand({ replSetInitiate: { _id: SET, members } });
  print(`initiated ${SET} with ${MEMBERS.join(", ")}`);
} else {
  print(`${SET} already initiated`);
}

// Wait (up to two minutes) for a writable primary anywhere in the set.
let primary = null;
for (let i = 0; i < 120 && !primary; i++) {
  primary = first.runCommand({ hello: 1 }).primary || null;
  if (!primary) sleep(1000);
}
if (!primary) throw new Error(`${SET} elected no primary in two minutes`);

const admin = open(`mongodb://${MEMBERS.join(",")}/admin?replicaSet=${SET}`);
const roles = [
  { role: "readWriteAnyDatabase", db: "admin" }, // one database per service
  { role: "clusterMonitor", db: "admin" },       // serverStatus, replSetGetStatus
];
if (admin.getUser(env.MONGO_APP_USER) === null) {
  admin.createUser({ user: env.MONGO_APP_USER, pwd: env.MONGO_APP_PASSWORD, roles });
  print(`created the services' account`);
} else {
  admin.updateUser(env.MONGO_APP_USER, { pwd: env.MONGO_APP_PASSWORD, roles });
  print(`updated the services' account`);
}
