// The C core as seen from the QuickJS client: the `tdnative` module registered by
// qjs-native/qjs_main.c (implemented in qjs-native/td_quickjs.c).
import * as tdnative from 'tdnative';
import type { Native } from '../../native.js';

export const native: Native = tdnative as Native;
