// A charge point for the end-to-end tests of evgate's OCPP bridge, built on
// the third-party npm `ocpp-rpc` 2.2.1 in strict mode: every CALL and answer
// evgate sends is validated by ocpp-rpc against the OCA OCPP 1.6 schemas, and
// an invalid one fails the scenario.
//
//   node ocpp_charger.js MODE URL IDENTITY [PASSWORD] [ARG]
//
// MODE
//   session   boot (Pending, configured by evgate, Accepted), status, Authorize,
//             Start/MeterValues/Stop, repeats, the hostile frames; prints one
//             JSON line {"event":"result",...}, then {"event":"ready"} and stays
//             connected, answering evgate's commands, until SIGTERM. Every
//             SetChargingProfile (accepted) is printed as {"event":"profile",...}.
//   start     boot, then StartTransaction on connector 1; prints
//             {"event":"started","transactionId":N} and stays connected (until
//             the connection drops or SIGTERM).
//   stop      (ARG = transactionId) connects, retrying until evgate is back,
//             sends StopTransaction for ARG twice; prints {"event":"stopped",...}.
//   hold      connects and stays connected (prints {"event":"open"}) until its
//             connection is closed; prints {"event":"closed","code":N,"reason":S}.
//   connect   one connection attempt; prints {"event":"connect","ok":bool,"error":S}.
'use strict';

const { RPCClient, createRPCError } = require('ocpp-rpc');

const [mode, url, identity, password, arg] = process.argv.slice(2);

function emit(event) {
  process.stdout.write(JSON.stringify(event) + '\n');
}

function now() {
  return new Date().toISOString();
}

function client(options = {}) {
  const cli = new RPCClient({
    endpoint: url,
    identity,
    password: password || undefined,
    protocols: ['ocpp1.6'],
    strictMode: true,
    reconnect: false,
    callTimeoutMs: 10000,
    ...options,
  });
  const seen = { failures: [], calls: [] };
  cli.on('strictValidationFailure', (e) => seen.failures.push(String(e.error && e.error.message)));
  // Answers to the raw hostile frames are responses to CALLs ocpp-rpc did
  // not make: bad messages to it, expected while `seen.raw` is set.
  cli.on('badMessage', (e) => {
    if (!seen.raw) seen.failures.push('bad message: ' + String(e.error && e.error.message));
  });
  // Answers to what evgate asks; TriggerMessage also sends what was asked for.
  const sendTriggered = async (params) => {
    try {
      if (params.requestedMessage === 'BootNotification') {
        const boot = await cli.call('BootNotification', bootPayload());
        seen.calls.push('triggered BootNotification: ' + boot.status);
        if (seen.onBoot) seen.onBoot(boot);
      } else if (params.requestedMessage === 'StatusNotification') {
        for (const connectorId of [0, 1, 2]) {
          await cli.call('StatusNotification',
              { connectorId, errorCode: 'NoError', status: 'Available', timestamp: now() });
        }
        seen.calls.push('triggered StatusNotification');
      } else if (params.requestedMessage === 'MeterValues') {
        // The register the transaction below starts from (its meterStart).
        await cli.call('MeterValues', {
          connectorId: params.connectorId || 1,
          meterValue: [{ timestamp: now(), sampledValue: [{ value: '120000', context: 'Trigger' }] }],
        });
        seen.calls.push('triggered MeterValues ' + (params.connectorId || 0));
      }
    } catch (e) {
      seen.failures.push('triggered ' + params.requestedMessage + ': ' + e.message);
    }
  };
  cli.handle('GetConfiguration', ({ params }) => {
    seen.calls.push('GetConfiguration ' + JSON.stringify(params.key || []));
    return {
      configurationKey: [
        { key: 'SupportedFeatureProfiles', readonly: true,
          value: 'Core,FirmwareManagement,LocalAuthListManagement,Reservation,SmartCharging,RemoteTrigger' },
        { key: 'ChargeProfileMaxStackLevel', readonly: true, value: '8' },
        { key: 'ChargingScheduleAllowedChargingRateUnit', readonly: true, value: 'Current,Power' },
        { key: 'MeterValuesSampledData', readonly: false, value: 'Energy.Active.Import.Register' },
        { key: 'MeterValueSampleInterval', readonly: false, value: '60' },
      ],
    };
  });
  cli.handle('ChangeConfiguration', ({ params }) => {
    seen.calls.push('ChangeConfiguration ' + params.key + '=' + params.value);
    return { status: 'Accepted' };
  });
  cli.handle('TriggerMessage', ({ params }) => {
    seen.calls.push('TriggerMessage ' + params.requestedMessage);
    setImmediate(() => sendTriggered(params));
    return { status: 'Accepted' };
  });
  cli.handle('ClearCache', () => ({ status: 'Accepted' }));
  // Charging profiles are printed as they come: {"event":"profile",...},
  // and kept per connector and stack level for GetCompositeSchedule.
  const profiles = new Map();
  cli.handle('SetChargingProfile', ({ params }) => {
    const p = params.csChargingProfiles;
    const period = p.chargingSchedule.chargingSchedulePeriod[0];
    profiles.set(params.connectorId + '/' + p.stackLevel,
                 { connectorId: params.connectorId, stackLevel: p.stackLevel, limit: period.limit,
                   unit: p.chargingSchedule.chargingRateUnit, validTo: p.validTo });
    emit({ event: 'profile', connectorId: params.connectorId, stackLevel: p.stackLevel,
           purpose: p.chargingProfilePurpose, unit: p.chargingSchedule.chargingRateUnit,
           limit: period.limit, validTo: p.validTo || null, identity });
    return { status: 'Accepted' };
  });
  // The profile in force: the highest stack level not expired.
  cli.handle('GetCompositeSchedule', ({ params }) => {
    const inForce = [...profiles.values()]
        .filter((p) => p.connectorId === params.connectorId &&
                       (!p.validTo || Date.parse(p.validTo) > Date.now()))
        .sort((a, b) => b.stackLevel - a.stackLevel)[0];
    emit({ event: 'composite', connectorId: params.connectorId,
           limit: inForce ? inForce.limit : null, identity });
    if (!inForce) return { status: 'Rejected' };
    return {
      status: 'Accepted', connectorId: params.connectorId, scheduleStart: now(),
      chargingSchedule: { chargingRateUnit: inForce.unit,
                          chargingSchedulePeriod: [{ startPeriod: 0, limit: inForce.limit }] },
    };
  });
  cli.handle('Reset', ({ params }) => {
    seen.calls.push('Reset ' + params.type);
    return { status: 'Accepted' };
  });
  cli.handle(({ method }) => {
    throw createRPCError('NotSupported', method + ' is not supported by this test charger');
  });
  return { cli, seen };
}

function bootPayload() {
  return {
    chargePointVendor: 'DS', chargePointModel: 'DS Series 60kW',
    chargePointSerialNumber: 'E2E-0001', firmwareVersion: '2.4.1',
  };
}

// Resolves when a BootNotification (ours or a triggered one) is Accepted.
function acceptedBoot(seen, timeoutMs) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no Accepted boot within ' + timeoutMs + ' ms')),
        timeoutMs);
    seen.onBoot = (boot) => {
      if (boot.status === 'Accepted') {
        clearTimeout(timer);
        resolve(boot);
      }
    };
  });
}

async function boot(cli, seen) {
  const accepted = acceptedBoot(seen, 15000);
  const first = await cli.call('BootNotification', bootPayload());
  if (first.status === 'Accepted') seen.onBoot(first);
  const final = await accepted;
  return { first, final };
}

// Resolves once `cond()` holds, checking every 20 ms; rejects after `ms`.
function until(cond, ms) {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + ms;
    const check = () => {
      if (cond()) return resolve();
      if (Date.now() > deadline) return reject(new Error('condition not met within ' + ms + ' ms'));
      setTimeout(check, 20);
    };
    check();
  });
}

// Sends a raw frame and resolves with the first answer frame carrying its id
// (or null when there is none within `ms`).
function rawExchange(cli, frame, id, ms = 1000) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      cli.off('message', onMessage);
      resolve(null);
    }, ms);
    const onMessage = ({ message, outbound }) => {
      if (outbound) return;
      let parsed;
      try { parsed = JSON.parse(String(message)); } catch (e) { return; }
      if (Array.isArray(parsed) && parsed[1] === id) {
        clearTimeout(timer);
        cli.off('message', onMessage);
        resolve(parsed);
      }
    };
    cli.on('message', onMessage);
    cli.sendRaw(frame);
  });
}

async function session() {
  const { cli, seen } = client();
  await cli.connect();
  const result = { event: 'result' };
  const { first, final } = await boot(cli, seen);
  result.boot = { first: first.status, firstInterval: first.interval, final: final.status,
                  finalInterval: final.interval };
  result.heartbeat = await cli.call('Heartbeat', {});
  await cli.call('StatusNotification', { connectorId: 2, errorCode: 'OtherError', status: 'Faulted',
                                         vendorErrorCode: '023010', info: 'door open' });
  result.authorize = (await cli.call('Authorize', { idTag: '04D4E5F6071829' })).idTagInfo;
  result.authorizeBlocked = (await cli.call('Authorize', { idTag: 'DEADBEEF' })).idTagInfo;
  // The state evgate asked for after the boot is sent before the car comes.
  await until(() => seen.calls.includes('triggered StatusNotification') &&
                     seen.calls.some((c) => c.startsWith('triggered MeterValues')), 10000);
  const status = (connectorId, state) => cli.call('StatusNotification',
      { connectorId, errorCode: 'NoError', status: state, timestamp: now() });
  // A car plugged into connector 1, the card accepted: the charger starts.
  await status(1, 'Preparing');
  const start = { connectorId: 1, idTag: '04D4E5F6071829', meterStart: 120000, timestamp: now() };
  const started = await cli.call('StartTransaction', start);
  const again = await cli.call('StartTransaction', start);
  await status(1, 'Charging');
  result.transactionId = started.transactionId;
  result.startIdTagStatus = started.idTagInfo.status;
  result.repeatedStartSameId = again.transactionId === started.transactionId;
  await cli.call('MeterValues', {
    connectorId: 1, transactionId: started.transactionId,
    meterValue: [{ timestamp: now(), sampledValue: [
      { value: '135.5', unit: 'kWh', measurand: 'Energy.Active.Import.Register' },
      { value: '48.2', unit: 'kW', measurand: 'Power.Active.Import' },
      { value: '63', unit: 'Percent', measurand: 'SoC', location: 'EV' },
    ] }],
  });
  const stop = { transactionId: started.transactionId, meterStop: 135500, timestamp: now(),
                 reason: 'EVDisconnected', idTag: '04D4E5F6071829',
                 transactionData: [{ timestamp: now(), sampledValue: [{ value: '135500' }] }] };
  result.stop = await cli.call('StopTransaction', stop);
  result.repeatedStop = await cli.call('StopTransaction', stop);
  await status(1, 'Available');
  result.unknownStop = await cli.call('StopTransaction',
      { transactionId: 987654, meterStop: 1, timestamp: now() });
  result.dataTransfer = await cli.call('DataTransfer', { vendorId: 'com.example', messageId: 'x' });

  // Hostile frames, sent raw past ocpp-rpc's own checks.
  seen.raw = true;
  result.hostile = {
    schemaViolation: await rawExchange(cli, '[2,"h1","Heartbeat",{"unexpected":1}]', 'h1'),
    wrongType: await rawExchange(cli, '[2,"h2","StatusNotification",{"connectorId":"one","errorCode":"NoError","status":"Available"}]', 'h2'),
    unknownAction: await rawExchange(cli, '[2,"h3","Teleport",{}]', 'h3'),
    centralSystemAction: await rawExchange(cli, '[2,"h4","Reset",{"type":"Soft"}]', 'h4'),
    messageType: await rawExchange(cli, '[9,"h5","Heartbeat",{}]', 'h5'),
    malformed: await rawExchange(cli, '[2,"h6","Heartbeat",{', 'h6', 300),
    strayResult: await rawExchange(cli, '[3,"never-sent",{}]', 'never-sent', 300),
  };
  // The same message id twice: the same answer, handled once.
  const dup1 = await rawExchange(cli, '[2,"dup","Heartbeat",{}]', 'dup');
  const dup2 = await rawExchange(cli, '[2,"dup","Heartbeat",{}]', 'dup');
  result.hostile.duplicateSameAnswer = JSON.stringify(dup1) === JSON.stringify(dup2);
  seen.raw = false;
  // Still connected and working after all of that.
  result.heartbeatAfterHostile = Boolean((await cli.call('Heartbeat', {})).currentTime);
  result.calls = seen.calls;
  result.failures = seen.failures;
  emit(result);
  emit({ event: 'ready' });
  cli.on('close', ({ code, reason }) => emit({ event: 'closed', code, reason: String(reason) }));
  process.on('SIGTERM', async () => {
    await cli.close({ code: 1000, force: true });
    process.exit(0);
  });
}

async function startOnly() {
  const { cli, seen } = client();
  await cli.connect();
  await boot(cli, seen);
  const started = await cli.call('StartTransaction',
      { connectorId: 1, idTag: '04D4E5F6071829', meterStart: 5000, timestamp: now() });
  emit({ event: 'started', transactionId: started.transactionId, failures: seen.failures });
  cli.on('close', () => process.exit(0));
}

async function stopAfterRestart() {
  const transactionId = Number(arg);
  const deadline = Date.now() + 30000;
  for (;;) {
    const { cli, seen } = client();
    try {
      await cli.connect();
      const stop = { transactionId, meterStop: 9000, timestamp: new Date(1800000000000).toISOString(),
                     reason: 'PowerLoss' };
      const first = await cli.call('StopTransaction', stop);
      const second = await cli.call('StopTransaction', stop);
      emit({ event: 'stopped', first, second, failures: seen.failures });
      await cli.close({ force: true });
      return;
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 300));
    }
  }
}

async function hold() {
  const { cli } = client();
  await cli.connect();
  cli.on('close', ({ code, reason }) => {
    emit({ event: 'closed', code, reason: String(reason) });
    process.exit(0);
  });
  emit({ event: 'open' });
}

async function connectOnce() {
  const { cli } = client();
  try {
    await cli.connect();
    emit({ event: 'connect', ok: true });
    await cli.close({ force: true });
  } catch (e) {
    emit({ event: 'connect', ok: false, error: String(e.message) });
  }
}

const modes = { session, start: startOnly, stop: stopAfterRestart, hold, connect: connectOnce };
if (!modes[mode]) {
  process.stderr.write('unknown mode ' + mode + '\n');
  process.exit(2);
}
modes[mode]().catch((e) => {
  emit({ event: 'error', error: String(e && e.stack || e) });
  process.exit(1);
});
