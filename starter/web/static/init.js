// Start GOV.UK Frontend's components (error summary focus, buttons, character counts).
import { initAll } from "/assets/govuk-frontend.js";
initAll();
