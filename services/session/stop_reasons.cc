#include "services/session/stop_reasons.h"

#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace evgate::session {
namespace {

struct Entry {
  v1::StopReason reason;
  const char* description;
};

// ICE-22 V2X user manual, Appendix 5 "Reason for end of charging". Code 222
// has no text in the manual; 223 is printed garbled and reads as "PWM
// Failure".
const std::map<int, Entry>& Ice22StopReasons() {
  static const auto* table = new std::map<int, Entry>{
      {1, {v1::STOP_REASON_OTHER, "Normal Stop: condition satisfied"}},
      {2, {v1::STOP_REASON_EV_REQUESTED, "Normal Stop: EV Request Stop"}},
      {201, {v1::STOP_REASON_FAULT, "Parameter configuration failed"}},
      {202, {v1::STOP_REASON_FAULT, "Charging Enable timeout"}},
      {203, {v1::STOP_REASON_FAULT, "Abnormal volt of outside bus"}},
      {204, {v1::STOP_REASON_FAULT, "Unable lock charging gun"}},
      {205, {v1::STOP_REASON_FAULT, "Insulation inspection abnormal"}},
      {206, {v1::STOP_REASON_FAULT, "Insulation inspection timeout"}},
      {207, {v1::STOP_REASON_FAULT, "EV Relay Pull-In timeout"}},
      {208, {v1::STOP_REASON_FAULT, "Require Curr Timeout"}},
      {209, {v1::STOP_REASON_FAULT, "Remain time over stop"}},
      {210, {v1::STOP_REASON_FAULT, "Ring fail alarm (reserved)"}},
      {211, {v1::STOP_REASON_FAULT, "Communication with EV failed"}},
      {212, {v1::STOP_REASON_FAULT, "Plugged gun timeout"}},
      {213, {v1::STOP_REASON_FAULT, "Pre-Charging fault"}},
      {214, {v1::STOP_REASON_FAULT, "DoorOpen"}},
      {215, {v1::STOP_REASON_EMERGENCY_STOP, "EPO"}},
      {216, {v1::STOP_REASON_FAULT, "SPD"}},
      {217, {v1::STOP_REASON_FAULT, "AllRectFail"}},
      {218, {v1::STOP_REASON_POWER_LOSS, "MainsFailAlm"}},
      {219, {v1::STOP_REASON_FAULT, "AllRectCommFail"}},
      {220, {v1::STOP_REASON_FAULT, "E_LockFail"}},
      {221, {v1::STOP_REASON_FAULT, "GunOverTemp"}},
      {223, {v1::STOP_REASON_FAULT, "PWM Failure"}},
      {224, {v1::STOP_REASON_FAULT, "Ground Fault Detected"}},
      {250, {v1::STOP_REASON_FAULT, "CR Comm Fail"}},
      {251, {v1::STOP_REASON_FAULT, "kWhMeterComm Fail"}},
      {252, {v1::STOP_REASON_FAULT, "CCU Comm Fail"}},
      {301, {v1::STOP_REASON_FAULT, "EV Error: Battery overvoltage"}},
      {302, {v1::STOP_REASON_FAULT, "EV Error: Battery undervoltage"}},
      {303, {v1::STOP_REASON_FAULT, "EV Error: Battery current deviation error"}},
      {304, {v1::STOP_REASON_FAULT, "EV Error: High battery temperature"}},
      {305, {v1::STOP_REASON_FAULT, "EV Error: Battery voltage deviation error"}},
      {306, {v1::STOP_REASON_FAULT, "EV Error: Charger Connector Lock Fault"}},
      {307, {v1::STOP_REASON_FAULT, "EV Error: Vehicle shift position"}},
      {308, {v1::STOP_REASON_FAULT, "EV Error: Error Status Noticed by EV"}},
      {309, {v1::STOP_REASON_FAULT, "EV Error: PLC Low Level Comm Fail"}},
      {310, {v1::STOP_REASON_FAULT, "EV Error: PLC High Level Comm Fail"}},
      {311, {v1::STOP_REASON_FAULT, "EV Error: PLC Authentication Timeout"}},
      {312, {v1::STOP_REASON_FAULT, "EV Error: PLC ParamDiscovery Timeout"}},
      {401, {v1::STOP_REASON_LOCAL, "Canceled: Local Stop"}},
      {402, {v1::STOP_REASON_REMOTE, "Canceled: Server Stop"}},
      {403, {v1::STOP_REASON_NETWORK_FAULT, "Canceled: Network fault"}},
      {404, {v1::STOP_REASON_REBOOT, "Canceled: Reboot"}},
      {405, {v1::STOP_REASON_DEAUTHORIZED, "Canceled: DeAuthorized"}},
      {406, {v1::STOP_REASON_LOCAL, "Canceled: One-Click Stop"}},
      {407, {v1::STOP_REASON_HARD_RESET, "Canceled: Hard Reset"}},
      {408, {v1::STOP_REASON_SOFT_RESET, "Canceled: Soft Reset"}},
      {501, {v1::STOP_REASON_OTHER, "Other"}},
  };
  return *table;
}

VendorStop Ice22(absl::string_view code) {
  int number = 0;
  if (!absl::SimpleAtoi(code, &number)) return {v1::STOP_REASON_OTHER, ""};
  auto it = Ice22StopReasons().find(number);
  if (it != Ice22StopReasons().end()) return {it->second.reason, it->second.description};
  // Not in the table: the class of its hundred.
  if (number >= 200 && number < 300) return {v1::STOP_REASON_FAULT, ""};
  if (number >= 300 && number < 400) return {v1::STOP_REASON_FAULT, ""};
  return {v1::STOP_REASON_OTHER, ""};
}

// DS Series DSWx601 manual, sections 5.3 and 5.4: the codes whose meaning
// for a session is explicit, then the classes.
VendorStop Ds60(absl::string_view code, bool blocks_charging) {
  static const auto* table = new std::map<std::string, Entry, std::less<>>{
      {"012251", {v1::STOP_REASON_EMERGENCY_STOP, "Emergency switch is pressed"}},
      {"012252", {v1::STOP_REASON_FAULT, "The cabinet door has been opened"}},
      {"023979", {v1::STOP_REASON_EV_REQUESTED, "CCS EV full charging"}},
      {"023983", {v1::STOP_REASON_EV_REQUESTED, "CCS stop by EV with unknown reason"}},
      {"023984", {v1::STOP_REASON_OTHER, "Stop by EVSE condition (config or OCPP)"}},
      {"033900", {v1::STOP_REASON_NETWORK_FAULT, "Disconnected from backend through Ethernet"}},
      {"033901", {v1::STOP_REASON_NETWORK_FAULT, "Disconnected from backend through WiFi"}},
      {"033902", {v1::STOP_REASON_NETWORK_FAULT, "Disconnected from backend through 3G/4G"}},
      {"033904", {v1::STOP_REASON_REMOTE, "Remote stop charging by backend"}},
      {"033905", {v1::STOP_REASON_REBOOT, "Remote reset by backend"}},
  };
  auto it = table->find(code);
  if (it != table->end()) return {it->second.reason, it->second.description};
  const absl::string_view prefix = code.substr(0, 3);
  if (code.size() == 6 && code >= "012200" && code <= "012214") {
    return {v1::STOP_REASON_FAULT, "Abnormal input voltage"};
  }
  if (code.size() == 6 && code >= "012241" && code <= "012244") {
    return {v1::STOP_REASON_NETWORK_FAULT, "External network disconnected"};
  }
  if (prefix == "011" || prefix == "041") {
    return {v1::STOP_REASON_FAULT, "Charger part or connection fault"};
  }
  if (prefix == "023") return {v1::STOP_REASON_FAULT, "Message from the EV"};
  if (prefix == "033") return {v1::STOP_REASON_NETWORK_FAULT, "Charger network message"};
  return {blocks_charging ? v1::STOP_REASON_FAULT : v1::STOP_REASON_OTHER, ""};
}

// Cabur EV PLUS manual, 7.1.2 "Digital character display".
VendorStop Cabur(absl::string_view code, bool blocks_charging) {
  static const auto* table = new std::map<std::string, const char*, std::less<>>{
      {"ERR OCP", "Over-current fault"},
      {"ERR OVP", "Over-voltage fault"},
      {"ERR LVP", "Under-voltage fault"},
      {"ERR MET", "Meter communication fault"},
      {"ERR CAN ADDR", "CAN bus fault"},
      {"ERR PE", "Ground fault"},
      {"ERR CP", "CP voltage fault"},
      {"ERR R12", "Relay 1 blocked fault"},
      {"ERR R3N", "Relay 2 blocked fault"},
      {"ERR ROT", "Relay over-temperature fault"},
      {"ERR ELK", "Electronic lock abnormal fault"},
      {"ERR OCT", "Plug holder over-temperature fault"},
      {"ERR IRD", "Leakage fault"},
      {"ERR FAN", "Fan fault (the fan is blocked)"},
      {"ERR PP", "Unreliable connection fault"},
      {"ERR MIS", "Missing power phase fault"},
  };
  const std::string normalized = absl::AsciiStrToUpper(code);
  auto it = table->find(normalized);
  if (it != table->end()) return {v1::STOP_REASON_FAULT, it->second};
  return {blocks_charging ? v1::STOP_REASON_FAULT : v1::STOP_REASON_OTHER, ""};
}

// OCPP 1.6 section 7.42 Reason. UnlockCommand: the Central System unlocked
// the connector, which ends the transaction from the backend's side.
VendorStop OcppReason(absl::string_view code) {
  static const auto* table = new std::map<std::string, Entry, std::less<>>{
      {"", {v1::STOP_REASON_LOCAL, "Stopped at the charger (no reason given: Local)"}},
      {"DeAuthorized", {v1::STOP_REASON_DEAUTHORIZED, "The idTag was deauthorized"}},
      {"EmergencyStop", {v1::STOP_REASON_EMERGENCY_STOP, "Emergency stop button"}},
      {"EVDisconnected", {v1::STOP_REASON_EV_DISCONNECTED, "The vehicle was disconnected"}},
      {"HardReset", {v1::STOP_REASON_HARD_RESET, "Hard reset of the charger"}},
      {"Local", {v1::STOP_REASON_LOCAL, "Stopped at the charger"}},
      {"Other", {v1::STOP_REASON_OTHER, "Other reason (OCPP Other)"}},
      {"PowerLoss", {v1::STOP_REASON_POWER_LOSS, "Complete loss of power"}},
      {"Reboot", {v1::STOP_REASON_REBOOT, "The charger rebooted"}},
      {"Remote", {v1::STOP_REASON_REMOTE, "Stopped remotely (RemoteStopTransaction)"}},
      {"SoftReset", {v1::STOP_REASON_SOFT_RESET, "Soft reset of the charger"}},
      {"UnlockCommand", {v1::STOP_REASON_REMOTE, "The connector was unlocked remotely"}},
  };
  auto it = table->find(code);
  if (it != table->end()) return {it->second.reason, it->second.description};
  return {v1::STOP_REASON_OTHER, ""};
}

}  // namespace

VendorStop MapVendorStopCode(absl::string_view catalog, absl::string_view code,
                             bool blocks_charging) {
  if (catalog == kIce22StopReasonCatalog) return Ice22(code);
  if (catalog == kDs60Catalog) return Ds60(code, blocks_charging);
  if (catalog == kCaburCatalog) return Cabur(code, blocks_charging);
  if (catalog == kOcppStopReasonCatalog) return OcppReason(code);
  return {blocks_charging ? v1::STOP_REASON_FAULT : v1::STOP_REASON_OTHER, ""};
}

bool IsStopReasonCatalog(absl::string_view catalog) {
  return catalog == kIce22StopReasonCatalog || catalog == kOcppStopReasonCatalog;
}

}  // namespace evgate::session
