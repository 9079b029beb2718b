export { createCustodian, type Custodian, type CreateCustodianOptions } from './create-custodian.js';
export { loadConfig, type CustodianConfig, type ConfigOverrides } from './config.js';
