// Drives Herald's PaaS face with Scalingo's own npm client, unchanged, and prints one JSON
// object with what each call returned (or the APIError it raised) for the pytest side to check.
//
// Environment: SCALINGO_MODULE (the installed `scalingo` package directory), HERALD_URL,
// HERALD_API_KEY, APP, EVENT_ID (an event published for APP), HOOK_URL (a receiver that accepts POSTs), BROKEN_HOOK_URL (one
// that answers 500).
"use strict";

const scalingo = require(process.env.SCALINGO_MODULE);

const WEBHOOK_PLATFORM = "5982f145d48c3600273ef08a";

async function outcome(promise) {
  try {
    return { ok: true, value: await promise };
  } catch (error) {
    // The package's APIError (not exported): the HTTP status and the parsed body.
    if (error && typeof error.status === "number" && "data" in error) {
      return { ok: false, status: error.status, data: error.data, message: error.message };
    }
    throw error;
  }
}

async function main() {
  const env = process.env;
  const options = { apiUrl: env.HERALD_URL, authApiUrl: env.HERALD_URL };
  const app = env.APP;
  const out = {};

  out.badKey = await outcome(scalingo.clientFromToken("hk_not-a-key-0123456789abcdefghij", options));
  const client = await scalingo.clientFromToken(env.HERALD_API_KEY, options);
  out.token = client._token;

  out.platforms = await outcome(client.NotificationPlatforms.list());
  out.eventTypes = await outcome(client.Events.listEventTypes());
  out.self = await outcome(client.Users.self());
  out.regions = await outcome(client.Regions.all());
  out.events = await outcome(client.Events.for(app, { page: 1, per_page: 10 }));
  out.event = await outcome(client.Events.find(app, env.EVENT_ID));

  out.created = await outcome(
    client.Notifiers.create(app, {
      platform_id: WEBHOOK_PLATFORM,
      name: "Deploys to the receiver",
      active: true,
      send_all_events: true,
      type_data: { webhook_url: env.HOOK_URL },
    }),
  );
  const id = out.created.value.id;
  out.invalid = await outcome(
    client.Notifiers.create(app, { platform_id: WEBHOOK_PLATFORM, name: "No URL", type_data: {} }),
  );
  out.listed = await outcome(client.Notifiers.for(app));
  out.otherApp = await outcome(client.Notifiers.for(`${app}-other`));
  out.got = await outcome(client.Notifiers.get(app, id));
  out.updated = await outcome(
    client.Notifiers.update(app, id, {
      name: "Crashes only",
      send_all_events: false,
      selected_event_ids: ["59c52a9c7651ce001f62f578"],
    }),
  );
  out.tested = await outcome(client.Notifiers.test(app, id));

  const broken = await client.Notifiers.create(app, {
    platform_id: WEBHOOK_PLATFORM,
    name: "Broken target",
    type_data: { webhook_url: env.BROKEN_HOOK_URL },
  });
  out.brokenTest = await outcome(client.Notifiers.test(app, broken.id));
  await client.Notifiers.destroy(app, broken.id);

  out.destroyed = await outcome(client.Notifiers.destroy(app, id));
  out.gone = await outcome(client.Notifiers.get(app, id));
  out.listedAfter = await outcome(client.Notifiers.for(app));

  process.stdout.write(JSON.stringify(out) + "\n");
}

main().catch((error) => {
  process.stderr.write(`${error && error.stack ? error.stack : error}\n`);
  process.exit(1);
});
